"""The optional LSTM forecaster of anomaly detection (ANOMALY_ML_ENABLED, the `ml` extra):
the backward pass against numerical differentiation, learning a sine, finding a spike in it,
and the service without ML or without numpy."""

from __future__ import annotations

import logging
import math
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from iotistic_agent.anomaly import AnomalyConfig, AnomalyConfigError, AnomalyDetectionService
from iotistic_agent.anomaly.forecast import LSTM, LSTMForecaster
from iotistic_agent.anomaly.ml import NUMPY_MISSING

T0 = 1_736_985_600_000
PERIOD = 40
AMPLITUDE = 5.0
SINE_STD = AMPLITUDE / math.sqrt(2)


def sine(i: int) -> float:
    return 10.0 + AMPLITUDE * math.sin(2 * math.pi * i / PERIOD)


def test_backward_pass_matches_numerical_gradient() -> None:
    model = LSTM(hidden=8, seed=3)
    rng = np.random.default_rng(1)
    model.theta += rng.normal(0.0, 0.3, model.size)  # away from the initial, symmetric point
    inputs = rng.normal(0.0, 1.0, 16)
    target = 0.7
    y, cache = model.forward(inputs)
    analytic = model.backward(cache, y - target)  # d(0.5 (y - t)^2)/dy = y - t

    numeric = np.zeros(model.size)
    eps = 1e-6
    for j in range(model.size):
        old = model.theta[j]
        model.theta[j] = old + eps
        plus = model.loss(inputs, target)
        model.theta[j] = old - eps
        minus = model.loss(inputs, target)
        model.theta[j] = old
        numeric[j] = (plus - minus) / (2 * eps)

    assert np.count_nonzero(numeric) > model.size * 0.9  # every group of weights is exercised
    error = np.max(np.abs(numeric - analytic)) / np.max(np.abs(numeric))
    assert error < 1e-6


def test_forecaster_learns_a_sine() -> None:
    forecaster = LSTMForecaster()
    early: list[float] = []
    late: list[float] = []
    for i in range(3000):
        x = sine(i)
        forecast = forecaster.predict()
        if forecast is not None:
            (early if i < 300 else late).append(abs(x - forecast))
        forecaster.update(x)
    assert forecaster.ready
    # Untrained it forecasts about "no change"; trained, its error is a small share of the
    # series' spread and of its own start.
    assert np.mean(late[-500:]) < 0.1 * SINE_STD
    assert np.mean(late[-500:]) < 0.5 * np.mean(early)
    assert forecaster.residual_scale() < 0.2 * SINE_STD
    assert forecaster.nbytes == 4 * 8 * forecaster.model.size * 3 // 4  # theta + Adam m, s


def learned_sine_service(points: int) -> AnomalyDetectionService:
    service = AnomalyDetectionService(AnomalyConfig(ml_enabled=True, cooldown_ms=0))
    for i in range(points):
        found = service.process_data_point("s", "sine", sine(i), T0 + i * 1000)
        assert [d for d in found if d.method == "lstm"] == [], i
    return service


def test_a_spike_in_a_learned_sine_is_found_by_the_forecaster() -> None:
    start = 63 * PERIOD
    service = learned_sine_service(start)
    assert service.forecast_count == 1
    # Just past a crest: 3 standard deviations of the series above it. The window's
    # statistics see a moderate outlier (the crest is in range), the forecaster a very large
    # one, so the forecaster's more severe finding is the one reported.
    spike_at = start + 13
    methods: dict[int, list[str]] = {}
    for i in range(start, start + 2 * PERIOD):
        x = sine(i) + (3 * SINE_STD if i == spike_at else 0.0)
        result = service.process("s", "sine", x, T0 + i * 1000)
        if result.detections:
            methods[i] = [d.method for d in result.detections]
        if i == spike_at:
            assert result.score > 0.99
            detection = result.detections[0]
            assert detection.method == "lstm"
            assert detection.severity == "critical"
            assert detection.expected == pytest.approx(sine(i), abs=0.2 * SINE_STD)
            assert detection.deviation >= 3 * 2.5
            assert detection.threshold == 3.0
    # Found once: the spike entered the forecaster's window as its forecast, so the next
    # forecasts do not echo it.
    assert methods == {spike_at: ["lstm"]}


def test_the_forecaster_only_reports_when_more_severe_than_the_statistics() -> None:
    service = learned_sine_service(600)
    i = 600
    # A value far outside the window: every statistical method and the forecaster agree it
    # is critical, and the statistics win the tie.
    found = service.process_data_point("s", "sine", 10.0 + 20 * SINE_STD, T0 + i * 1000)
    assert [d.method for d in found] != ["lstm"]
    assert found[0].severity == "critical"


def test_garbage_and_bad_quality_never_reach_the_forecaster() -> None:
    service = learned_sine_service(400)
    forecaster = service._forecasts.get(("s", "sine"))  # type: ignore[union-attr]
    assert forecaster is not None
    before = (forecaster.trained, list(forecaster._values))
    for value in (math.nan, math.inf, -math.inf, "12", None, True, 1e300, [1.0]):
        assert service.process_data_point("s", "sine", value, T0 + 400_000) == []
    assert service.process_data_point("s", "sine", 1e6, T0 + 400_000, quality="BAD") == []
    assert service.process_data_point("s", "sine", 1.0, "soon") == []
    assert (forecaster.trained, list(forecaster._values)) == before
    assert np.isfinite(forecaster.model.theta).all()
    assert service.forecast_count == 1


def test_ml_max_series_bounds_the_forecasters(caplog: pytest.LogCaptureFixture) -> None:
    service = AnomalyDetectionService(AnomalyConfig(ml_enabled=True, ml_max_series=2))
    with caplog.at_level(logging.WARNING):
        for i in range(40):
            for m in range(5):
                service.process_data_point("s", f"m{m}", sine(i) + m, T0 + i * 1000)
    assert service.series_count == 5
    assert service.forecast_count == 2
    logged = [r for r in caplog.records if "ml_max_series" in r.getMessage()]
    assert len(logged) == 1


def test_reconfigure_turns_the_forecaster_on_and_off() -> None:
    service = AnomalyDetectionService(AnomalyConfig())
    for i in range(50):
        service.process_data_point("s", "sine", sine(i), T0 + i * 1000)
    assert service.forecast_count == 0
    service.reconfigure(AnomalyConfig(ml_enabled=True))
    for i in range(50, 100):
        service.process_data_point("s", "sine", sine(i), T0 + i * 1000)
    assert service.forecast_count == 1
    service.reconfigure(AnomalyConfig(ml_enabled=True, sensitivity="high"))
    assert service.forecast_count == 1  # other settings keep what was learned
    service.reconfigure(AnomalyConfig(ml_enabled=True, window_size=50))
    assert service.forecast_count == 0  # a new window restarts every series' learning
    service.reconfigure(AnomalyConfig(ml_enabled=False))
    for i in range(100, 150):
        service.process_data_point("s", "sine", sine(i), T0 + i * 1000)
    assert service.forecast_count == 0


def test_ml_max_series_must_not_be_negative() -> None:
    with pytest.raises(AnomalyConfigError, match="ml_max_series"):
        AnomalyConfig(ml_max_series=-1)


def run_python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


FEED = """
    import logging, math, sys
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    from iotistic_agent.anomaly import AnomalyConfig, AnomalyDetectionService
    service = AnomalyDetectionService(AnomalyConfig(ml_enabled=ML, cooldown_ms=0))
    found = []
    for i in range(300):
        x = 10 + 5 * math.sin(i / 6) + (40 if i == 250 else 0)
        found += service.process_data_point("s", "m", x, 1_736_985_600_000 + i * 1000)
    print("methods", sorted({d.method for d in found}))
    print("forecasters", service.forecast_count)
    print("numpy imported", "numpy" in sys.modules)
"""


def test_without_ml_numpy_is_never_imported() -> None:
    done = run_python(FEED.replace("ML", "False"))
    assert done.returncode == 0, done.stderr
    assert "forecasters 0" in done.stdout
    assert "numpy imported False" in done.stdout
    assert "methods ['" in done.stdout  # the statistics still found the spike
    assert done.stderr == ""


def test_ml_without_numpy_warns_once_and_uses_the_statistics() -> None:
    hide = 'import sys\nsys.modules["numpy"] = None  # import numpy raises ImportError\n'
    done = run_python(hide + textwrap.dedent(FEED.replace("ML", "True")))
    assert done.returncode == 0, done.stderr
    assert done.stderr.count(NUMPY_MISSING) == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert "forecasters 0" in done.stdout
    assert "methods ['" in done.stdout
    assert "'lstm'" not in done.stdout


def test_ml_with_numpy_imports_it() -> None:
    done = run_python(FEED.replace("ML", "True"))
    assert done.returncode == 0, done.stderr
    assert "forecasters 1" in done.stdout
    assert "numpy imported True" in done.stdout

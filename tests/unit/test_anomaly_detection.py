"""AnomalyDetectionService: injected anomalies, clean data, warm-up, quality, garbage,
cool-down, history and the report summary, and cost per point."""

from __future__ import annotations

import logging
import math
import random
import sys
from collections import Counter

import pytest
from anomaly_support import KINDS, clean_series
from iotistic_agent.anomaly import AnomalyConfig, AnomalyDetectionService, Detection

T0 = 1_736_985_600_000  # the spec example's timestamp, in ms


def feed_noise(
    service: AnomalyDetectionService, n: int, seed: int = 0, metric: str = "m", start: int = 0
) -> None:
    rng = random.Random(seed)
    for i in range(start, start + n):
        service.process_data_point("s", metric, base(i) + rng.gauss(0, 1), T0 + i * 1000)


def base(i: int) -> float:
    return 55 + 2 * math.sin(i / 300)


def first_detection(
    kind: str, magnitude: float, sensitivity: str = "medium", seed: int = 0
) -> Detection | None:
    """Series of noise sigma 1; from point 300 inject ``magnitude`` sigmas of ``kind``."""
    service = AnomalyDetectionService(
        AnomalyConfig(sensitivity=sensitivity, cooldown_ms=0)  # type: ignore[arg-type]
    )
    feed_noise(service, 300, seed)
    rng = random.Random(f"after-{seed}")
    for i in range(300, 330):
        noise = rng.gauss(0, 1)
        if kind == "spike":
            value = base(i) + magnitude if i == 300 else base(i) + noise
        elif kind == "drop":
            value = base(i) - magnitude if i == 300 else base(i) + noise
        elif kind == "drift":  # reaches the magnitude over 10 s, noise-free while it lasts
            value = base(i) + magnitude * min(1.0, (i - 299) / 10)
        else:
            raise ValueError(kind)
        detections = service.process_data_point("s", "m", value, T0 + i * 1000)
        if detections:
            return detections[0]
    return None


# --- injected anomalies ----------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("kind", ["spike", "drop"])
def test_magnitude_3_spikes_and_drops_are_detected(kind: str, seed: int) -> None:
    # 3 sigmas is exactly the medium threshold, so the injection is measured at high
    # sensitivity (threshold 2.25 sigma): a point outlier found by the robust method.
    detection = first_detection(kind, 3, "high", seed)
    assert detection is not None
    assert detection.timestamp == T0 + 300_000
    assert detection.method == "mad"
    assert detection.severity in ("info", "warning")
    assert detection.quality == "GOOD"
    assert detection.threshold == 2.25
    assert detection.deviation >= detection.threshold
    assert (detection.value > detection.expected) == (kind == "spike")


@pytest.mark.parametrize("seed", range(5))
def test_magnitude_3_drift_is_detected(seed: int) -> None:
    detection = first_detection("drift", 3, "high", seed)
    assert detection is not None
    assert detection.method in ("mad", "z_score", "iqr")  # a level method, not the rate
    assert detection.timestamp > T0 + 300_000  # found while the level moves, not before


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize(
    ("magnitude", "severity"), [(3.5, "info"), (6, "warning"), (12, "critical")]
)
def test_severity_grows_with_the_magnitude(magnitude: float, severity: str, seed: int) -> None:
    spike = first_detection("spike", magnitude, "medium", seed)
    drop = first_detection("drop", magnitude, "medium", seed)
    assert spike is not None and drop is not None
    assert spike.severity == drop.severity == severity
    # The robust method reports unless only the z-score crossed its threshold.
    assert {spike.method, drop.method} <= {"mad", "z_score"}
    assert spike.threshold == drop.threshold == 3.0


def test_sudden_jump_inside_the_normal_range_is_a_rate_change() -> None:
    # A wide sine: +40 stays inside the window's range, so only the rate shows it.
    service = AnomalyDetectionService()
    rng = random.Random(3)
    found = []
    for i in range(400):
        value = 60 + 50 * math.sin(2 * math.pi * i / 200) + rng.gauss(0, 0.2)
        if i == 350:
            value += 40
        found += service.process_data_point("system", "fan_rpm", value, T0 + i * 1000)
    jump = [d for d in found if d.timestamp == T0 + 350_000]
    assert len(jump) == 1
    assert jump[0].method == "rate_change"
    assert jump[0].severity == "critical"
    assert jump[0].threshold == 50.0  # percent
    assert jump[0].deviation > 50.0
    assert not [d for d in found if d.severity == "critical" and d is not jump[0]]


def test_output_has_the_specs_shape() -> None:
    service = AnomalyDetectionService()
    feed_noise(service, 200)
    (detection,) = service.process_data_point("s", "m", 95.2, T0 + 200_000)
    assert list(detection.to_dict()) == [
        "timestamp",
        "source",
        "metric",
        "value",
        "expected",
        "method",
        "severity",
        "confidence",
        "deviation",
        "quality",
        "threshold",
    ]
    assert detection.severity == "critical"
    assert 0.95 <= detection.confidence <= 1.0
    assert detection.value == 95.2
    assert 50 < detection.expected < 60


# --- clean data ------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_an_hour_of_clean_data_raises_no_critical_alert(kind: str) -> None:
    for seed in range(2):
        service = AnomalyDetectionService()
        start = seed * 20_000  # different phases of the daily cycle
        for i, value in enumerate(clean_series(kind, 3600, seed, start)):
            service.process_data_point("system", kind, value, T0 + i * 1000)
        severities = Counter(d.severity for d in service.history)
        assert severities["critical"] == 0, (kind, seed, list(service.history))
        # 3-sigma alerts happen on noise by definition; the cool-down keeps them rare.
        assert severities["warning"] <= 5
        assert len(service.history) <= 40


@pytest.mark.parametrize("kind", ["flat", "humidity_int", "process_count"])
def test_flat_and_quantised_series_do_not_alarm_on_one_step(kind: str) -> None:
    service = AnomalyDetectionService()
    results = [
        service.process("system", kind, value, T0 + i * 1000)
        for i, value in enumerate(clean_series(kind, 600, 1))
    ]
    assert all(0.0 <= r.score <= 1.0 for r in results)
    assert not [d for d in service.history if d.severity != "info"]
    if kind == "flat":
        assert all(r.score == 0.0 for r in results)
        # A flat series that moves is news, and divides by no zero.
        (detection,) = service.process_data_point("system", kind, 50.0, T0 + 600_000)
        assert detection.severity == "critical"


# --- warm-up, quality, garbage ---------------------------------------------------------------


def test_no_alert_during_warm_up() -> None:
    service = AnomalyDetectionService(AnomalyConfig(warmup_points=50))
    feed_noise(service, 10)
    assert service.process("s", "m", 1e6, T0 + 10_000).detections == []
    assert service.process("s", "m", 1e6, T0 + 10_000).score == 0.0
    feed_noise(service, 100, start=11)
    assert service.process_data_point("s", "m", 1e6, T0 + 200_000)


def test_warm_up_defaults_to_one_window() -> None:
    service = AnomalyDetectionService(AnomalyConfig(window_size=20))
    feed_noise(service, 19)
    assert service.process_data_point("s", "m", 1e6, T0 + 19_000) == []  # point 20: learned
    feed_noise(service, 5, start=20)
    assert service.process_data_point("s", "m", -1e6, T0 + 30_000)


def test_bad_quality_never_alerts_and_is_not_learned() -> None:
    service = AnomalyDetectionService()
    feed_noise(service, 200)
    for i in range(300):
        assert service.process_data_point("s", "m", 1e6, T0 + (200 + i) * 1000, "BAD") == []
    assert service.counters["bad_quality"] == 300
    # The baseline did not move: a GOOD reading of the same value still alerts.
    (detection,) = service.process_data_point("s", "m", 1e6, T0 + 600_000, "GOOD")
    assert detection.severity == "critical"
    assert 50 < detection.expected < 60


def test_uncertain_quality_alerts_with_lower_confidence_and_at_most_warning() -> None:
    service = AnomalyDetectionService()
    feed_noise(service, 200)
    (detection,) = service.process_data_point("s", "m", 1e6, T0 + 200_000, "uncertain")
    assert detection.quality == "UNCERTAIN"
    assert detection.severity == "warning"
    assert detection.confidence <= 0.5


@pytest.mark.parametrize(
    "value",
    [None, float("nan"), float("inf"), -float("inf"), "42", True, b"1", [1], 10**400, 1e200],
)
def test_garbage_is_rejected_with_one_log_line_per_metric(
    value: object, caplog: pytest.LogCaptureFixture
) -> None:
    service = AnomalyDetectionService()
    feed_noise(service, 150)
    with caplog.at_level(logging.WARNING, logger="iotistic_agent.anomaly.service"):
        for _ in range(5):
            assert service.process_data_point("s", "m", value, T0 + 200_000) == []
        service.process_data_point("s", "other", value, T0 + 200_000)
    lines = [r for r in caplog.records if "ignores readings" in r.getMessage()]
    assert [r.getMessage().split(" (")[0] for r in lines] == [
        "anomaly detection ignores readings of s/m",
        "anomaly detection ignores readings of s/other",
    ]
    assert service.counters["rejected"] == 6
    # The series still works afterwards.
    assert service.process_data_point("s", "m", 1e6, T0 + 201_000)


@pytest.mark.parametrize(
    ("source", "metric", "timestamp", "quality"),
    [
        ("", "m", None, "GOOD"),
        ("s", None, None, "GOOD"),
        ("s", "m", "yesterday", "GOOD"),
        ("s", "m", float("nan"), "GOOD"),
        ("s", "m", -1, "GOOD"),
        ("s", "m", None, "EXCELLENT"),
        ("s", "m", None, None),
    ],
)
def test_bad_keys_timestamps_and_qualities_are_rejected(
    source: object, metric: object, timestamp: object, quality: object
) -> None:
    service = AnomalyDetectionService()
    assert service.process_data_point(source, metric, 1.0, timestamp, quality) == []  # type: ignore[arg-type]
    assert service.counters["rejected"] == 1


def test_disabled_service_does_nothing() -> None:
    service = AnomalyDetectionService(AnomalyConfig(enabled=False))
    feed_noise(service, 200)
    assert service.process_data_point("s", "m", 1e6, T0 + 200_000) == []
    assert service.series_count == 0


def test_series_are_bounded() -> None:
    service = AnomalyDetectionService(AnomalyConfig(max_series=3))
    for i in range(10):
        service.process_data_point("s", f"m{i}", 1.0, T0)
    assert service.series_count == 3
    assert service.counters["rejected"] == 7


def test_series_without_readings_are_forgotten_and_make_room() -> None:
    now = [T0]
    day = 24 * 3600 * 1000
    service = AnomalyDetectionService(
        AnomalyConfig(max_series=2, series_idle_ms=day), monotonic_ms=lambda: now[0]
    )
    service.process_data_point("s", "removed_sensor", 1.0)
    service.process_data_point("s", "kept", 1.0)
    now[0] += day // 2
    service.process_data_point("s", "kept", 1.0)
    assert service.process_data_point("s", "new", 1.0) == []
    assert service.counters["rejected"] == 1  # full, and nothing idle long enough yet
    now[0] += day // 2 + 1
    service.process_data_point("s", "new", 1.0)
    assert service.counters["rejected"] == 1  # the removed sensor's slot was freed
    assert {key[1] for key in service._series} == {"kept", "new"}
    # Without any pressure, idle series still go on the periodic sweep.
    now[0] += 2 * day
    service.process_data_point("s", "new", 1.0)
    assert {key[1] for key in service._series} == {"new"}


# --- cool-down, history, summary -------------------------------------------------------------


def test_cool_down_suppresses_repeats_but_not_escalation() -> None:
    service = AnomalyDetectionService(AnomalyConfig(cooldown_ms=60_000))
    feed_noise(service, 200)
    t = T0 + 200_000
    first = service.process_data_point("s", "m", 60.0, t)  # about 5 sigmas: warning
    assert [d.severity for d in first] == ["warning"]
    assert service.process_data_point("s", "m", 60.5, t + 1000) == []
    assert service.counters["suppressed"] == 1
    escalated = service.process_data_point("s", "m", 1e6, t + 2000)
    assert [d.severity for d in escalated] == ["critical"]
    assert service.process_data_point("s", "m", 1e7, t + 3000) == []
    # Another metric has its own cool-down.
    feed_noise(service, 200, metric="other")
    assert service.process_data_point("s", "other", 1e6, t + 3000)
    # Back to normal long enough to close the episode, but still inside the cool-down.
    feed_noise(service, 10, start=204)
    assert service.process_data_point("s", "m", 1e8, t + 20_000) == []
    # After the cool-down the same metric alerts again.
    assert service.process_data_point("s", "m", 1e8, t + 63_000)


def test_an_episode_alerts_once_until_the_series_is_back_to_normal() -> None:
    # Sampled every 5 minutes, so the 60 s cool-down never applies: episodes alone.
    service = AnomalyDetectionService(AnomalyConfig(cooldown_ms=60_000))
    rng = random.Random(1)
    minutes5 = 300_000
    for i in range(200):
        service.process_data_point("s", "m", 50 + rng.gauss(0, 1), T0 + i * minutes5)
    # An outage: the value sits far below normal for 20 samples.
    outage = [
        d
        for i in range(200, 220)
        for d in service.process_data_point("s", "m", 10 + rng.gauss(0, 1), T0 + i * minutes5)
    ]
    assert len(outage) == 1 and outage[0].timestamp == T0 + 200 * minutes5
    for i in range(220, 260):  # recovered
        service.process_data_point("s", "m", 50 + rng.gauss(0, 1), T0 + i * minutes5)
    again = service.process_data_point("s", "m", 10.0, T0 + 260 * minutes5)
    assert [d.timestamp for d in again] == [T0 + 260 * minutes5]


def test_history_keeps_the_last_1000_and_summary_the_last_10() -> None:
    service = AnomalyDetectionService(AnomalyConfig(window_size=10))
    rng = random.Random(0)
    for m in range(1200):
        for i in range(10):
            service.process_data_point("s", f"m{m}", rng.gauss(0, 1), T0 + i * 1000)
        service.process_data_point("s", f"m{m}", 1e6, T0 + m * 1000 + 10_000)
    assert service.counters["detections"] > 1000
    assert len(service.history) == 1000
    summary = service.summary_for_report(10)
    assert summary["total"] == service.counters["detections"]
    assert sum(summary["bySeverity"].values()) == summary["total"]
    assert summary["monitoredSeries"] == 1200
    recent = summary["recent"]
    assert len(recent) == 10
    assert recent[0] == service.history[-1].to_dict()  # newest first
    stamps = [r["timestamp"] for r in recent]
    assert stamps == sorted(stamps, reverse=True)
    assert service.summary_for_report(0)["recent"] == []


def test_default_timestamp_is_now_in_ms() -> None:
    service = AnomalyDetectionService(AnomalyConfig(window_size=10), clock_ms=lambda: T0 + 42)
    for i in range(20):
        service.process_data_point("s", "m", float(i % 3), T0 + i)
    (detection,) = service.process_data_point("s", "m", 1e6)
    assert detection.timestamp == T0 + 42


# --- cost per point --------------------------------------------------------------------------


def calls_per_point(window: int, n: int = 5_000) -> float:
    """Python and C function calls per point once the window is full (sys.setprofile): a
    deterministic count, where a timing would depend on the machine's load."""
    service = AnomalyDetectionService(AnomalyConfig(window_size=window, warmup_points=10))
    rng = random.Random(1)
    for i in range(window + 100):  # fill the window
        service.process_data_point("system", "m", rng.gauss(50, 5), T0 + i * 100)
    values = [rng.gauss(50, 5) for _ in range(n)]
    calls = 0

    def count(frame: object, event: str, arg: object) -> None:
        nonlocal calls
        if event in ("call", "c_call"):
            calls += 1

    sys.setprofile(count)
    try:
        for i, value in enumerate(values):
            service.process_data_point("system", "m", value, T0 + (window + 100 + i) * 100)
    finally:
        sys.setprofile(None)
    return calls / n


def test_python_level_work_per_point_does_not_grow_with_the_window() -> None:
    # Iterating over the window in Python (a recomputed mean, MAD or quantile) would make a
    # 5000-point window do ~50x the calls of a 100-point one; the incremental structures keep
    # the count the same. C-level work that grows (the memmove inside one insort) is measured
    # in time by bench/bench_anomaly.py, not here: a timing in a test depends on the load.
    small = calls_per_point(100)
    large = calls_per_point(5000)
    assert large < small * 1.5, (small, large)


def test_a_flood_of_rejected_metrics_logs_a_bounded_number_of_lines(
    caplog: pytest.LogCaptureFixture,
) -> None:
    service = AnomalyDetectionService(AnomalyConfig(max_series=1))
    with caplog.at_level(logging.WARNING, logger="iotistic_agent.anomaly.service"):
        for i in range(3000):
            service.process_data_point("s", f"m{i}", 1.0, T0)
    assert service.counters["rejected"] == 2999
    assert len(caplog.records) == 1000


def test_a_detector_failure_is_logged_once_and_never_raised(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from iotistic_agent.anomaly.detector import SeriesDetector

    def broken(*_args: object) -> None:
        raise ZeroDivisionError("bug")

    service = AnomalyDetectionService(AnomalyConfig(window_size=10))
    feed_noise(service, 20)
    monkeypatch.setattr(SeriesDetector, "evaluate", broken)
    with caplog.at_level(logging.ERROR, logger="iotistic_agent.anomaly.service"):
        for i in range(5):
            result = service.process("s", "m", 1e6, T0 + (20 + i) * 1000)
            assert result == (0.0, [])
    assert len(caplog.records) == 1
    assert service.counters["rejected"] == 5


def test_returned_lists_are_the_callers_own() -> None:
    service = AnomalyDetectionService()
    first = service.process_data_point("s", "m", 1.0, T0)
    first.append("mine")  # type: ignore[arg-type]
    assert service.process_data_point("s", "m", 1.0, T0 + 1000) == []


def test_a_full_service_looks_for_idle_series_at_most_once_a_minute() -> None:
    now = [T0]
    service = AnomalyDetectionService(AnomalyConfig(max_series=2), monotonic_ms=lambda: now[0])
    service.process_data_point("s", "a", 1.0)
    service.process_data_point("s", "b", 1.0)
    sweeps = []
    real = service.prune_idle
    service.prune_idle = lambda now_ms: sweeps.append(now_ms) or real(now_ms)  # type: ignore[method-assign]
    for i in range(1000):  # a flood of new metric names
        service.process_data_point("s", f"spam{i}", 1.0)
    assert len(sweeps) == 1 and service.counters["rejected"] == 1000
    now[0] += 61_000
    service.process_data_point("s", "one more", 1.0)
    assert len(sweeps) == 2


def test_a_timestamp_that_goes_back_becomes_the_new_reference() -> None:
    service = AnomalyDetectionService(AnomalyConfig(window_size=10, warmup_points=10))
    for i in range(50):
        service.process_data_point("s", "m", 50.0 + (i % 3), T0 + i * 1000)
    service.process_data_point("s", "m", 51.0, T0 + 40_001)  # the clock was set back
    detector = service._series[("s", "m")]
    assert detector._prev_ts == T0 + 40_001
    # From there on, rates are taken over the real spacing again: no alarm from tiny gaps.
    found = [
        d
        for i in range(1, 20)
        for d in service.process_data_point("s", "m", 50.0 + (i % 3), T0 + 40_001 + i * 1000)
    ]
    assert found == []

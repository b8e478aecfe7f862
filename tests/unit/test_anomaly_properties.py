"""Properties: the sliding window's statistics equal a recomputation, and the service's score
stays in 0..1 and nothing raises whatever it is fed."""

from __future__ import annotations

import statistics

from hypothesis import given, settings
from hypothesis import strategies as st
from iotistic_agent.anomaly import AnomalyConfig, AnomalyDetectionService
from iotistic_agent.anomaly.window import SlidingWindow

finite = st.floats(min_value=-1e9, max_value=1e9, allow_nan=False, allow_infinity=False)
quantised = st.integers(min_value=-5, max_value=5).map(float)


@settings(max_examples=300, deadline=None)
@given(
    size=st.integers(min_value=2, max_value=30),
    values=st.lists(finite | quantised, max_size=90),
)
def test_window_statistics_match_recomputation(size: int, values: list[float]) -> None:
    window = SlidingWindow(size)
    for x in values:
        window.push(x)
    kept = values[-size:]
    assert len(window) == len(kept)
    if not kept:
        return
    median = statistics.median(kept)
    assert window.median() == median
    assert window.mad(median) == statistics.median(abs(v - median) for v in kept)
    # Rounding comes from values still in the window or pushed since the last exact refresh.
    scale = max(1.0, max(abs(v) for v in values[-2 * size :]))
    assert abs(window.mean - statistics.fmean(kept)) <= 1e-9 * scale
    if len(kept) > 1:
        assert abs(window.std - statistics.stdev(kept)) <= 1e-6 * scale
    assert window.quantile(0.0) == min(kept)
    assert window.quantile(1.0) == max(kept)
    assert min(kept) <= window.quantile(0.25) <= window.quantile(0.75) <= max(kept)


garbage = st.one_of(
    st.none(),
    st.booleans(),
    st.text(max_size=5),
    st.just(float("nan")),
    st.just(float("inf")),
    st.just(-float("inf")),
    st.integers(min_value=10**400, max_value=10**401),
    st.lists(st.integers(), max_size=2),
)
values = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(10**20), max_value=10**20),
    garbage,
)
points = st.tuples(
    st.sampled_from(["cpu", "temp", ""]),
    values,
    st.one_of(st.none(), st.integers(min_value=-5, max_value=10**13), st.floats(), st.text()),
    st.sampled_from(["GOOD", "UNCERTAIN", "BAD", "good", "junk", None, 3]),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(points, max_size=80), st.sampled_from(["low", "medium", "high"]))
def test_score_in_unit_interval_and_never_raises(
    stream: list[tuple[str, object, object, object]], sensitivity: str
) -> None:
    service = AnomalyDetectionService(
        AnomalyConfig(window_size=10, warmup_points=3, sensitivity=sensitivity)  # type: ignore[arg-type]
    )
    for metric, value, timestamp, quality in stream:
        result = service.process("system", metric, value, timestamp, quality)
        assert 0.0 <= result.score <= 1.0
        for detection in result.detections:
            assert 0.0 <= detection.confidence <= 1.0
            assert detection.severity in ("info", "warning", "critical")
            assert detection.quality in ("GOOD", "UNCERTAIN")
    summary = service.summary_for_report()
    assert len(summary["recent"]) <= 10


@settings(max_examples=100, deadline=None)
@given(st.lists(finite | quantised, min_size=5, max_size=150))
def test_finite_streams_score_in_unit_interval(stream: list[float]) -> None:
    service = AnomalyDetectionService(AnomalyConfig(window_size=10, warmup_points=3))
    for i, x in enumerate(stream):
        result = service.process("s", "m", x, i * 1000)
        assert 0.0 <= result.score <= 1.0

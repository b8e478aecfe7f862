"""A flat series whose only step so far was an anomaly keeps detecting that anomaly: the
earlier jump must not become the series' step size (found by the end-to-end test, where a
spike injected during warm-up hid every later one). A cumulative counter that is reset is
not a drop; a flat series that falls is."""

from __future__ import annotations

import random

from iotistic_agent.anomaly.config import AnomalyConfig
from iotistic_agent.anomaly.service import AnomalyDetectionService


def test_repeated_spikes_on_a_flat_series_are_each_detected() -> None:
    service = AnomalyDetectionService(AnomalyConfig(window_size=10, cooldown_ms=0))
    found = []
    for i in range(100):
        value = 28.125 if i % 30 == 0 else 22.5  # the first spike falls in the warm-up
        found += service.process_data_point("system", "storage_percent", value, 1_000_000 + i)
    assert [d.timestamp - 1_000_000 for d in found] == [30, 60, 90]
    # Once the long memory holds the spike level twice it is a known level: reported as info.
    assert [d.severity for d in found] == ["critical", "info", "info"]


def test_an_integer_counter_still_does_not_alarm_on_one_step() -> None:
    service = AnomalyDetectionService(AnomalyConfig(window_size=10))
    values = [3, 3, 4, 3, 3, 3, 4, 4, 3, 3] * 5 + [4]
    found = [
        d
        for i, v in enumerate(values)
        for d in service.process_data_point("system", "processes", v, 1_000_000 + i)
    ]
    assert found == []


def test_a_counter_reset_is_not_a_drop_and_learning_starts_again() -> None:
    service = AnomalyDetectionService(AnomalyConfig(sensitivity="high"))
    rng = random.Random(7)
    total = 1_000_000.0
    for i in range(300):
        total += rng.randint(50, 150)
        assert service.process_data_point("system", "rx_bytes", total, i * 1000) == []
    # The process restarted: the counter starts from zero again.
    total = 0.0
    for i in range(300, 330):
        total += rng.randint(50, 150)
        assert service.process_data_point("system", "rx_bytes", total, i * 1000) == []
    assert service._series[("system", "rx_bytes")].learned == 30


def test_a_flat_series_that_falls_is_still_a_drop() -> None:
    service = AnomalyDetectionService(AnomalyConfig(sensitivity="high"))
    for i in range(200):
        service.process_data_point("sensor", "level", 50.0, i * 1000)
    found = service.process_data_point("sensor", "level", 10.0, 200_000)
    assert [d.metric for d in found] == ["level"]

"""A flat series whose only step so far was an anomaly keeps detecting that anomaly: the
earlier jump must not become the series' step size (found by the end-to-end test, where a
spike injected during warm-up hid every later one)."""

from __future__ import annotations

from iotistic_agent.anomaly.config import AnomalyConfig
from iotistic_agent.anomaly.service import AnomalyDetectionService


def test_repeated_spikes_on_a_flat_series_are_each_detected() -> None:
    service = AnomalyDetectionService(AnomalyConfig(window_size=10, cooldown_ms=0))
    found = []
    for i in range(100):
        value = 28.125 if i % 30 == 0 else 22.5  # the first spike falls in the warm-up
        found += service.process_data_point("system", "storage_percent", value, 1_000_000 + i)
    assert [d.timestamp - 1_000_000 for d in found] == [30, 60, 90]
    assert all(d.severity == "critical" for d in found)


def test_an_integer_counter_still_does_not_alarm_on_one_step() -> None:
    service = AnomalyDetectionService(AnomalyConfig(window_size=10))
    values = [3, 3, 4, 3, 3, 3, 4, 4, 3, 3] * 5 + [4]
    found = [
        d
        for i, v in enumerate(values)
        for d in service.process_data_point("system", "processes", v, 1_000_000 + i)
    ]
    assert found == []

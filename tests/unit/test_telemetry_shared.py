"""The shared metrics summary: a caller that accepts a sample up to N seconds old reuses the
last one; older, or asked for a fresh one, it collects again."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from iotistic_agent.telemetry.shared import SharedSummary, metrics_summary


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Collect:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> dict[str, Any]:
        self.calls += 1
        return {"cpuPercent": float(self.calls)}


def shared() -> tuple[SharedSummary, Collect, Clock]:
    collect, clock = Collect(), Clock()
    return SharedSummary(collect, clock), collect, clock


def test_a_recent_sample_is_reused_within_the_age_asked_for() -> None:
    summary, collect, clock = shared()
    assert summary.get() == {"cpuPercent": 1.0}  # the sampler: always collects
    clock.now += 10.0
    assert summary.get(max_age_s=10.0) == {"cpuPercent": 1.0}  # the report: reuses it
    assert collect.calls == 1


def test_an_older_sample_is_collected_again_and_then_reused() -> None:
    summary, collect, clock = shared()
    summary.get()
    clock.now += 10.5
    assert summary.get(max_age_s=10.0) == {"cpuPercent": 2.0}
    clock.now += 3.0
    assert summary.get(max_age_s=10.0) == {"cpuPercent": 2.0}
    assert collect.calls == 2


def test_no_max_age_always_collects() -> None:
    summary, collect, _ = shared()
    assert [summary.get()["cpuPercent"] for _ in range(3)] == [1.0, 2.0, 3.0]
    assert collect.calls == 3


def test_the_first_call_collects_whatever_age_it_accepts() -> None:
    summary, collect, _ = shared()
    assert summary.get(max_age_s=60.0) == {"cpuPercent": 1.0}
    assert collect.calls == 1


def test_the_age_counts_from_before_the_collection() -> None:
    collect, clock = Collect(), Clock()

    def slow() -> dict[str, Any]:
        clock.now += 2.0  # the collection itself takes 2 s
        return collect()

    summary = SharedSummary(slow, clock)
    summary.get()
    clock.now += 8.5  # 10.5 s since the collection started
    summary.get(max_age_s=10.0)
    assert collect.calls == 2


def test_callers_get_copies() -> None:
    summary, _, _ = shared()
    summary.get()["cpuPercent"] = 99.0
    assert summary.get(max_age_s=1.0) == {"cpuPercent": 1.0}


def test_metrics_summary_shares_one_sample_per_data_directory(tmp_path: Path) -> None:
    first = metrics_summary(tmp_path)
    assert set(first) >= {"cpuPercent", "memoryPercent", "storagePercent", "uptimeSeconds"}
    assert metrics_summary(tmp_path, max_age_s=3600.0) == first
    other = tmp_path / "other"
    other.mkdir()
    assert set(metrics_summary(other, max_age_s=3600.0)) == set(first)

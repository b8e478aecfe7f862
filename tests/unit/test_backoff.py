"""The one backoff schedule every retry loop of the agent uses (pure)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from iotistic_agent.backoff import Backoff
from iotistic_agent.orchestrator.backoff import backoff_delay
from iotistic_agent.provisioning.service import PROVISIONING_BACKOFF


def test_provisioning_doubles_from_5_s_to_5_min_with_jitter() -> None:
    b = PROVISIONING_BACKOFF
    assert [b.delay(n, lambda: 0.5) for n in range(0, 9)] == [0, 5, 10, 20, 40, 80, 160, 300, 300]
    assert b.delay(1, lambda: 0.0) == pytest.approx(4.0)
    assert b.delay(1, lambda: 1.0) == pytest.approx(6.0)
    assert b.delay(10_000, lambda: 1.0) == 300  # never above the cap, no overflow
    assert 240 <= b.capped_delay(lambda: 1.0) <= b.capped_delay(lambda: 0.0) == 300


def test_crashed_services_follow_kubernetes_without_jitter() -> None:
    assert [backoff_delay(n) for n in range(0, 8)] == [0, 10, 20, 40, 80, 160, 300, 300]


def test_no_jitter_never_asks_for_a_random_number() -> None:
    def no_random() -> float:
        raise AssertionError("a backoff without jitter must be deterministic")

    assert Backoff(base_s=1, max_s=60, jitter=0.0).delay(3, no_random) == 4


@given(
    base=st.floats(0.001, 100),
    cap=st.floats(0.001, 10_000),
    jitter=st.floats(0, 0.5),
    failures=st.integers(1, 100_000),
    draw=st.floats(0, 1),
)
def test_a_delay_stays_within_the_jitter_band_and_the_cap(
    base: float, cap: float, jitter: float, failures: int, draw: float
) -> None:
    b = Backoff(base_s=base, max_s=cap, jitter=jitter)
    raw = min(base * 2.0 ** min(failures - 1, 64), cap)
    delay = b.delay(failures, lambda: draw)
    assert raw * (1 - jitter) - 1e-9 <= delay <= min(raw * (1 + jitter), cap) + 1e-9


@given(base=st.floats(0.001, 100), cap=st.floats(0.001, 10_000), failures=st.integers(1, 200))
def test_without_jitter_the_delay_never_shrinks(base: float, cap: float, failures: int) -> None:
    b = Backoff(base_s=base, max_s=cap, jitter=0.0)
    assert b.delay(failures) <= b.delay(failures + 1) <= cap

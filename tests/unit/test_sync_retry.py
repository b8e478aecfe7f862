"""Backoff, circuit breaker and connection state of the cloud loops (pure, fake clock)."""

from __future__ import annotations

import pytest
from iotistic_agent.cloud.retry import (
    CIRCUIT_THRESHOLD,
    ConnectionMonitor,
    RetryGate,
    RetryPolicy,
)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_backoff_doubles_from_15_s_and_caps_at_15_min() -> None:
    policy = RetryPolicy()
    no_jitter = [policy.delay(n, rand=lambda: 0.5) for n in range(1, 12)]
    assert no_jitter[:7] == [15, 30, 60, 120, 240, 480, 900]
    assert all(d == 900 for d in no_jitter[6:])


@pytest.mark.parametrize("rand", [0.0, 0.25, 0.999])
def test_jitter_stays_within_20_percent_and_under_the_cap(rand: float) -> None:
    policy = RetryPolicy()
    assert 15 * 0.8 <= policy.delay(1, rand=lambda: rand) <= 15 * 1.2
    assert policy.delay(10, rand=lambda: rand) <= 900


def test_error_counter_is_capped_at_10() -> None:
    clock = Clock()
    gate = RetryGate(RetryPolicy(circuit_cooldown_s=1), clock, rand=lambda: 0.5)
    for _ in range(25):
        gate.record_failure("down")
    assert gate.errors == 10


def test_gate_waits_for_the_backoff_then_allows_one_attempt() -> None:
    clock = Clock()
    gate = RetryGate(RetryPolicy(), clock, rand=lambda: 0.5)
    assert gate.may_attempt()
    gate.record_failure("connection refused")
    assert not gate.may_attempt()
    clock.now += 14.9
    assert not gate.may_attempt()
    clock.now += 0.2
    assert gate.may_attempt()
    gate.record_success()
    assert gate.errors == 0 and gate.last_error is None and gate.may_attempt()


def test_circuit_opens_after_10_consecutive_failures_for_the_cooldown() -> None:
    clock = Clock()
    gate = RetryGate(RetryPolicy(base_s=1, max_s=1, circuit_cooldown_s=300), clock)
    opened = [gate.record_failure("down") for _ in range(CIRCUIT_THRESHOLD)]
    assert opened == [False] * (CIRCUIT_THRESHOLD - 1) + [True]
    assert gate.circuit_open and not gate.may_attempt()
    assert gate.describe()["circuitOpen"] is True
    clock.now += 299
    assert gate.circuit_open
    clock.now += 2
    # Half-open: one attempt may go through; a success closes the circuit.
    assert not gate.circuit_open and gate.may_attempt()
    gate.record_success()
    assert gate.circuit_open_until is None


def test_circuit_reopens_when_the_attempt_after_the_cooldown_fails() -> None:
    clock = Clock()
    gate = RetryGate(RetryPolicy(base_s=1, max_s=1, circuit_cooldown_s=60), clock)
    for _ in range(CIRCUIT_THRESHOLD):
        gate.record_failure("down")
    clock.now += 61
    assert gate.may_attempt()
    gate.record_failure("still down")
    # Needs another full run of failures before it trips again, but backs off meanwhile.
    assert not gate.may_attempt()


def test_connection_state_online_degraded_offline() -> None:
    monitor = ConnectionMonitor()
    states = []
    for ok in (False, False, False, False, True):
        monitor.record(ok)
        states.append(monitor.state)
    assert states == ["online", "degraded", "offline", "offline", "online"]

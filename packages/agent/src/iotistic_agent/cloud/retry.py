"""When a cloud loop may try again: exponential backoff, a circuit breaker, connection state.

Pure bookkeeping with an injected clock; the loops in ``poller`` and ``reporter`` ask it.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Literal

from ..backoff import Backoff

ConnectionState = Literal["online", "degraded", "offline"]

# The spec's numbers: errors counted up to 10 (so the exponent stays small), the circuit
# opens after 10 consecutive failures and stays open for 5 minutes.
MAX_ERROR_COUNT: Final = 10
CIRCUIT_THRESHOLD: Final = 10
DEGRADED_AFTER: Final = 2
OFFLINE_AFTER: Final = 3


@dataclass(frozen=True)
class RetryPolicy(Backoff):
    """The spec's schedule for the cloud loops: 15 s, x2, capped at 15 min, +-20 % jitter."""

    base_s: float = 15.0
    max_s: float = 900.0
    circuit_cooldown_s: float = 300.0


class RetryGate:
    """One loop's failure bookkeeping: backoff delay and a circuit breaker."""

    def __init__(
        self,
        policy: RetryPolicy,
        clock: Callable[[], float],
        rand: Callable[[], float] = random.random,
    ) -> None:
        self._policy = policy
        self._clock = clock
        self._rand = rand
        self.errors = 0  # consecutive, capped at MAX_ERROR_COUNT
        self.consecutive_failures = 0  # uncapped run length, for the circuit
        self.next_attempt_at = 0.0
        self.circuit_open_until: float | None = None
        self.last_error: str | None = None

    @property
    def circuit_open(self) -> bool:
        until = self.circuit_open_until
        return until is not None and self._clock() < until

    def may_attempt(self) -> bool:
        return self._clock() >= self.next_attempt_at

    def record_success(self) -> None:
        self.errors = 0
        self.consecutive_failures = 0
        self.next_attempt_at = 0.0
        self.circuit_open_until = None
        self.last_error = None

    def record_failure(self, error: str, retry_after_s: float | None = None) -> bool:
        """Count a failure and schedule the next attempt (not before the cloud's Retry-After,
        at most the policy's maximum); True when the circuit just opened."""
        now = self._clock()
        self.errors = min(self.errors + 1, MAX_ERROR_COUNT)
        self.consecutive_failures += 1
        self.last_error = error
        delay = self._policy.delay_honouring(self.errors, retry_after_s, self._rand)
        tripped = self.consecutive_failures >= CIRCUIT_THRESHOLD
        if tripped:
            # After the cool-down one attempt goes through (half-open): a success closes the
            # circuit, a failure opens it again for another cool-down.
            self.consecutive_failures = 0
            self.circuit_open_until = now + self._policy.circuit_cooldown_s
            delay = max(delay, self._policy.circuit_cooldown_s)
        self.next_attempt_at = now + delay
        return tripped

    def describe(self) -> dict[str, object]:
        now = self._clock()
        until = self.circuit_open_until
        return {
            "errors": self.errors,
            "lastError": self.last_error,
            "nextAttemptInS": round(max(0.0, self.next_attempt_at - now), 3),
            "circuitOpen": self.circuit_open,
            "circuitCooldownRemainingS": round(max(0.0, until - now), 3) if until else 0.0,
        }


class ConnectionMonitor:
    """online / degraded (2+ consecutive failures) / offline (3+), over both loops."""

    def __init__(self) -> None:
        self.consecutive_failures = 0
        self.ever_connected = False

    def record(self, ok: bool) -> None:
        if ok:
            self.consecutive_failures = 0
            self.ever_connected = True
        else:
            self.consecutive_failures += 1

    @property
    def state(self) -> ConnectionState:
        if self.consecutive_failures >= OFFLINE_AFTER:
            return "offline"
        if self.consecutive_failures >= DEGRADED_AFTER:
            return "degraded"
        return "online"

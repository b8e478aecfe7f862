"""Exponential backoff: the one retry schedule of every loop in the agent (pure).

Each loop has its own figures: crashed services 10 s to 5 min without jitter (the planner
must stay a function of its inputs), automatic provisioning 5 s to 5 min, MQTT reconnects
1 s to 60 s, the cloud loops 15 s to 15 min (``cloud.retry.RetryPolicy``).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Backoff:
    base_s: float
    max_s: float
    factor: float = 2.0
    jitter: float = 0.2  # +-20 %: a fleet that lost the cloud together does not return together

    def delay(self, failures: int, rand: Callable[[], float] = random.random) -> float:
        """After 1 failure base_s, then growing by ``factor`` up to max_s, each spread by the
        jitter (never above max_s)."""
        if failures <= 0:
            return 0.0
        # The exponent is bounded: a counter in the thousands must not overflow a float.
        raw = min(self.base_s * self.factor ** min(failures - 1, 64), self.max_s)
        if not self.jitter:
            return raw
        return min(raw * (1 - self.jitter + 2 * self.jitter * rand()), self.max_s)

    def delay_honouring(
        self,
        failures: int,
        retry_after_s: float | None,
        rand: Callable[[], float] = random.random,
    ) -> float:
        """``delay``, but never sooner than a server's Retry-After, spread upwards by the
        jitter (a fleet told the same moment does not come back in step), and never beyond
        max_s: the device's own bound wins over what a server asks (RFC 9110, 10.2.3)."""
        own = self.delay(failures, rand)
        if retry_after_s is None:
            return own
        asked = retry_after_s * (1 + self.jitter * rand())
        return min(max(own, asked), self.max_s)

    def capped_delay(self, rand: Callable[[], float] = random.random) -> float:
        """The longest delay, spread below the cap: for a failure that repeating soon cannot
        fix (a refused provisioning key that only an admin can repair)."""
        return self.max_s * (1 - self.jitter * rand())

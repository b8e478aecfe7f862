"""Exponential backoff with jitter (pure): automatic provisioning and the cloud sync loops."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Backoff:
    base_s: float = 5.0
    max_s: float = 300.0
    factor: float = 2.0
    jitter: float = 0.2  # +-20 %: a fleet that lost the cloud together does not return together

    def delay(self, failures: int, rand: Callable[[], float] = random.random) -> float:
        """After 1 failure base_s, then doubling up to max_s, each spread by the jitter."""
        if failures <= 0:
            return 0.0
        raw = min(self.base_s * self.factor ** min(failures - 1, 64), self.max_s)
        return min(raw * (1 - self.jitter + 2 * self.jitter * rand()), self.max_s)

    def refused_delay(self, rand: Callable[[], float] = random.random) -> float:
        """After a refusal (bad, expired, revoked key) only an admin can help: retry rarely."""
        return self.max_s * (1 - self.jitter * rand())

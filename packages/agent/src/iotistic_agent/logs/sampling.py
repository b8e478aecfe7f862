"""Which of the agent's own log records go to the cloud: a share per level.

Warnings and errors always go, whatever the settings say: an operator must be able to trust
that a problem the device saw is in the cloud. Container output is never sampled (it is the
user's own data); this applies to the agent's records only.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from typing import Final

ALWAYS_SHIPPED: Final = frozenset({"warn", "error"})


class LevelSampler:
    def __init__(
        self, rates: Mapping[str, float], rand: Callable[[], float] = random.random
    ) -> None:
        self.rates = {
            level: 1.0 if level in ALWAYS_SHIPPED else min(1.0, max(0.0, rate))
            for level, rate in rates.items()
        }
        self._rand = rand

    def keep(self, level: str) -> bool:
        rate = self.rates.get(level, 1.0)
        return rate >= 1.0 or (rate > 0.0 and self._rand() < rate)

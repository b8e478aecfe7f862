"""Anomaly injection into metric values: spike, drop, drift or random, every interval.

Pure: ``apply`` takes the clean value, the time and the metric's typical standard deviation
and returns the value to use; injections are recorded so that a test (or a report) knows
exactly what was injected and when.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Literal

from .config import AnomalyInjectionScenario

Kind = Literal["spike", "drop", "drift"]
# A drift grows over this share of the interval, then stops until the next one.
DRIFT_SHARE: Final = 0.5


@dataclass(frozen=True)
class Injection:
    metric: str
    kind: Kind
    at: float
    offset: float


class AnomalyInjector:
    def __init__(self, scenario: AnomalyInjectionScenario, seed: int | None = None) -> None:
        self._scenario = scenario
        self._interval_s = scenario.intervalMs / 1000
        self._rng = random.Random(seed)
        self._window_start: dict[str, float] = {}
        self._window_kind: dict[str, Kind] = {}
        self.injected: list[Injection] = []

    def targets(self, metric: str) -> bool:
        # Whether injection runs at all is the runner's business (started at runtime too).
        return metric in self._scenario.metrics

    def apply(self, metric: str, value: float, t: float, scale: float) -> float:
        """``value`` with this interval's anomaly applied; ``scale`` is the metric's typical
        standard deviation (a floor of 1 % of the value keeps flat metrics testable)."""
        if not self.targets(metric):
            return value
        scale = max(scale, abs(value) * 0.01, 1e-9)
        start = self._window_start.get(metric)
        if start is None or t - start >= self._interval_s:
            # A new interval: its first sample carries a spike or drop, or a drift begins.
            self._window_start[metric] = start = t
            self._window_kind[metric] = self._kind()
            kind = self._window_kind[metric]
            if kind != "drift":
                offset = self._sign(kind) * self._scenario.magnitude * scale
                self.injected.append(Injection(metric, kind, t, offset))
                return value + offset
        if self._window_kind[metric] != "drift":
            return value
        progress = min(1.0, (t - start) / (self._interval_s * DRIFT_SHARE))
        offset = progress * self._scenario.magnitude * scale
        if progress >= 1.0 and not self._drift_recorded(metric, start):
            self.injected.append(Injection(metric, "drift", start, offset))
        return value + offset

    def _kind(self) -> Kind:
        pattern = self._scenario.pattern
        if pattern == "random":
            choice: Kind = self._rng.choice(("spike", "drop", "drift"))
            return choice
        return pattern

    @staticmethod
    def _sign(kind: Kind) -> float:
        return -1.0 if kind == "drop" else 1.0

    def _drift_recorded(self, metric: str, start: float) -> bool:
        return any(
            i.metric == metric and i.kind == "drift" and i.at == start for i in self.injected
        )


class AnomalyInjection:
    """The ``anomaly_injection`` scenario while it runs: the metrics sampler passes every
    value through ``inject``. Built before both the sampler and the simulation runner, which
    switches it on and off."""

    def __init__(
        self, scenario: AnomalyInjectionScenario, clock: Callable[[], float] = time.time
    ) -> None:
        self.injector = AnomalyInjector(scenario)
        self._clock = clock
        self.running = False

    def inject(self, metric: str, value: float, scale: float) -> float:
        """The value with an anomaly while injection runs, else unchanged."""
        if not self.running:
            return value
        return self.injector.apply(metric, value, self._clock(), scale)

"""Simulated clean series for anomaly tests and the benchmark: one reading per second."""

from __future__ import annotations

import math
import random
from collections.abc import Iterator

DAY = 86_400
KINDS = ("cpu_percent", "cpu_temp", "process_count", "flat", "bytes_total", "humidity_int")


def clean_series(kind: str, seconds: int, seed: int, start: int = 0) -> Iterator[float]:
    """Random walk + daily sine + noise, shaped like the kind of metric named."""
    rng = random.Random(f"{kind}-{seed}")
    walk = 0.0
    total = 0.0
    for i in range(start, start + seconds):
        day = math.sin(2 * math.pi * i / DAY)
        if kind == "cpu_percent":  # bounded percentage, noisy
            walk = max(-10.0, min(10.0, walk + rng.gauss(0, 0.05)))
            yield min(100.0, max(0.0, 30 + walk + 10 * day + rng.gauss(0, 2)))
        elif kind == "cpu_temp":  # slow walk, small noise
            walk += rng.gauss(0, 0.01)
            yield 55 + walk + 5 * day + rng.gauss(0, 0.3)
        elif kind == "process_count":  # quantised counter jittering by a step or two
            yield float(round(150 + 3 * day + rng.gauss(0, 1)))
        elif kind == "flat":  # a sensor stuck at one value
            yield 42.0
        elif kind == "bytes_total":  # cumulative byte counter in the 1e9 range
            total += max(0.0, rng.gauss(125_000, 20_000))
            yield 1e9 + total
        elif kind == "humidity_int":  # integer sensor that mostly sits still
            yield float(round(45 + 0.3 * rng.gauss(0, 1)))
        else:
            raise ValueError(kind)

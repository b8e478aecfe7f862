"""BME688-style readings (temperature, humidity, pressure, gas) as a pure function of time.

Patterns: ``realistic`` (a daily cycle, a slow random walk and sensor noise, clamped to what
the sensor can report), ``sine`` (a clean daily sine, for predictable tests) and ``random``
(uniform in the sensor's usual range). Deterministic for a given seed.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from iotistic_contracts.mqtt import SensorReading

from .config import SensorPattern

DAY_S: Final = 86_400.0
SENSOR_ID: Final = "sim_bme688_001"


@dataclass(frozen=True)
class Channel:
    metric: str
    unit: str
    base: float
    daily_amplitude: float
    walk_step: float
    noise: float
    low: float
    high: float


# Typical indoor values and the BME688's reporting limits.
CHANNELS: Final = (
    Channel("temperature", "C", 22.0, 2.5, 0.02, 0.05, -40.0, 85.0),
    Channel("humidity", "%", 45.0, 8.0, 0.05, 0.3, 0.0, 100.0),
    Channel("pressure", "hPa", 1013.0, 1.5, 0.01, 0.05, 300.0, 1100.0),
    Channel("gas", "kOhm", 120.0, 15.0, 0.5, 1.5, 0.0, 500.0),
)


class Bme688Simulator:
    def __init__(self, pattern: SensorPattern, seed: int | None = None) -> None:
        self.pattern = pattern
        self._rng = random.Random(seed)
        self._walk = {c.metric: 0.0 for c in CHANNELS}

    def values(self, t: float) -> dict[str, float]:
        """One value per channel at time ``t`` (seconds since the epoch)."""
        return {c.metric: round(self._value(c, t), 3) for c in CHANNELS}

    def _value(self, channel: Channel, t: float) -> float:
        if self.pattern == "random":
            span = channel.daily_amplitude * 2
            return self._rng.uniform(channel.base - span, channel.base + span)
        daily = channel.daily_amplitude * math.sin(2 * math.pi * (t % DAY_S) / DAY_S)
        if self.pattern == "sine":
            return channel.base + daily
        self._walk[channel.metric] += self._rng.gauss(0, channel.walk_step)
        # The walk is pulled back towards zero so that the value does not wander off.
        self._walk[channel.metric] *= 0.999
        value = channel.base + daily + self._walk[channel.metric]
        value += self._rng.gauss(0, channel.noise)
        return min(channel.high, max(channel.low, value))

    def readings(self, t: float) -> list[tuple[str, SensorReading]]:
        """(metric, reading) pairs as published on ``sensor/<uuid>/<metric>``."""
        stamp = datetime.fromtimestamp(t, UTC).isoformat().replace("+00:00", "Z")
        units = {c.metric: c.unit for c in CHANNELS}
        return [
            (
                metric,
                SensorReading(timestamp=stamp, value=v, unit=units[metric], sensor_id=SENSOR_ID),
            )
            for metric, v in self.values(t).items()
        ]

"""Anomaly detection settings, read from the spec's environment variable names.

Standalone on purpose: ``AnomalyConfig.from_env(os.environ)`` (or any mapping). The agent's
settings are not wired to it yet.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

Sensitivity = Literal["low", "medium", "high"]

# Multiplies every threshold: "high" alerts on smaller deviations, "low" only on larger ones.
SENSITIVITY_FACTOR: dict[str, float] = {"low": 4.0 / 3.0, "medium": 1.0, "high": 0.75}

MIN_WINDOW = 10
MAX_WINDOW = 100_000
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


class AnomalyConfigError(ValueError):
    """A setting has a value the detector cannot use; the message names the variable."""


@dataclass(frozen=True, slots=True)
class AnomalyConfig:
    enabled: bool = True
    window_size: int = 100
    sensitivity: Sensitivity = "medium"
    z_threshold: float = 3.0
    mad_threshold: float = 3.0
    # Percent: a rate-of-change alert also needs the step to change the value by this much.
    rate_threshold: float = 50.0
    ml_enabled: bool = False
    # Points of a metric that are only learned from, never alerted on (None: one window).
    warmup_points: int | None = None
    # After an alert, the same metric alerts again within this time, or before it has been
    # back to normal for a few points (one alert per episode), only on a higher severity.
    # 0 turns de-duplication off.
    cooldown_ms: int = 60_000
    # Detections kept in memory for reports.
    history_size: int = 1000
    # Bound on the number of (source, metric) series monitored at once.
    max_series: int = 10_000
    # A series without a reading for this long is forgotten (a sensor removed, a renamed
    # metric): its memory goes back to the pool, and it warms up again if it returns.
    series_idle_ms: int = 24 * 3600 * 1000
    # Bound on the series that also get a forecaster when ml_enabled (each costs ~10 KiB and
    # ~0.35 ms a point); series beyond it use the statistical methods only.
    ml_max_series: int = 256

    def __post_init__(self) -> None:
        if not MIN_WINDOW <= self.window_size <= MAX_WINDOW:
            raise AnomalyConfigError(
                f"window_size must be between {MIN_WINDOW} and {MAX_WINDOW}, got {self.window_size}"
            )
        if self.sensitivity not in SENSITIVITY_FACTOR:
            raise AnomalyConfigError(
                f"sensitivity must be low, medium or high, got {self.sensitivity!r}"
            )
        for name in ("z_threshold", "mad_threshold", "rate_threshold"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise AnomalyConfigError(f"{name} must be a positive number, got {value}")
        if self.warmup_points is not None and self.warmup_points < 2:
            raise AnomalyConfigError(f"warmup_points must be at least 2, got {self.warmup_points}")
        for name in (
            "cooldown_ms",
            "history_size",
            "max_series",
            "ml_max_series",
            "series_idle_ms",
        ):
            if getattr(self, name) < 0:
                raise AnomalyConfigError(f"{name} must not be negative")

    @property
    def factor(self) -> float:
        return SENSITIVITY_FACTOR[self.sensitivity]

    @property
    def warmup(self) -> int:
        return self.window_size if self.warmup_points is None else self.warmup_points

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> AnomalyConfig:
        """Read the ``ANOMALY_*`` variables; an empty or missing variable keeps the default.

        ``ANOMALY_WINDOW_SIZE`` (README) and ``ANOMALY_DETECTION_WINDOW_SIZE`` (agent docs)
        are both accepted; set to different values they are an error rather than a guess.
        """

        def get(name: str) -> str | None:
            raw = env.get(name)
            if raw is None or not raw.strip():
                return None
            return raw.strip()

        kwargs: dict[str, object] = {}
        for name, field in (
            ("ANOMALY_DETECTION_ENABLED", "enabled"),
            ("ANOMALY_ML_ENABLED", "ml_enabled"),
        ):
            raw = get(name)
            if raw is not None:
                kwargs[field] = _boolean(name, raw)

        window = get("ANOMALY_WINDOW_SIZE")
        alias = get("ANOMALY_DETECTION_WINDOW_SIZE")
        if window is not None and alias is not None and window != alias:
            raise AnomalyConfigError(
                f"ANOMALY_WINDOW_SIZE={window!r} and ANOMALY_DETECTION_WINDOW_SIZE={alias!r} "
                "disagree: set one of them"
            )
        raw_window = window if window is not None else alias
        if raw_window is not None:
            source = "ANOMALY_WINDOW_SIZE"
            if window is None:
                source = "ANOMALY_DETECTION_WINDOW_SIZE"
            try:
                size = int(raw_window)
            except ValueError:
                raise AnomalyConfigError(
                    f"{source} must be a whole number of samples, got {raw_window!r}"
                ) from None
            if not MIN_WINDOW <= size <= MAX_WINDOW:
                raise AnomalyConfigError(
                    f"{source} must be between {MIN_WINDOW} and {MAX_WINDOW}, got {size}"
                )
            kwargs["window_size"] = size

        sensitivity = get("ANOMALY_SENSITIVITY")
        if sensitivity is not None:
            if sensitivity.lower() not in SENSITIVITY_FACTOR:
                raise AnomalyConfigError(
                    f"ANOMALY_SENSITIVITY must be low, medium or high, got {sensitivity!r}"
                )
            kwargs["sensitivity"] = sensitivity.lower()

        for name, field in (
            ("ANOMALY_DETECTION_Z_THRESHOLD", "z_threshold"),
            ("ANOMALY_DETECTION_MAD_THRESHOLD", "mad_threshold"),
            ("ANOMALY_DETECTION_RATE_THRESHOLD", "rate_threshold"),
        ):
            raw = get(name)
            if raw is None:
                continue
            try:
                number = float(raw)
            except ValueError:
                number = math.nan
            if not (math.isfinite(number) and number > 0):
                raise AnomalyConfigError(f"{name} must be a positive number, got {raw!r}")
            kwargs[field] = number
        return cls(**kwargs)  # type: ignore[arg-type]


def _boolean(name: str, raw: str) -> bool:
    lowered = raw.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise AnomalyConfigError(f"{name} must be true or false, got {raw!r}")

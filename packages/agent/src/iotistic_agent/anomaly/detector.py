"""Streaming detection for one (source, metric) series: z-score, MAD, IQR, rate of change.

Every method turns its statistic into a deviation in "sigma units" of the series' own scale,
so one score is comparable across CPU percentages, temperatures, byte counters and quantised
counters. The scale is floored (``_floor``) so that a flat series never divides by zero and a
one-step jitter of an integer counter is one unit of deviation, not an alarm: the floor is the
smallest step the series has ever made (its quantum), or 0.1 % of its level, whichever is
larger.

A cumulative counter (a series that only ever rose over a whole window) that falls has been
reset (its process restarted, or it wrapped): that is not a drop. Its level means nothing
after the reset, so the series starts learning again instead of alerting.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from iotistic_agent.anomaly.config import AnomalyConfig
from iotistic_agent.anomaly.models import Method, Severity
from iotistic_agent.anomaly.window import SlidingWindow

MAD_TO_SIGMA = 1.4826  # MAD of a normal distribution is 0.6745 sigma
IQR_TO_SIGMA = 1.349  # IQR of a normal distribution is 1.349 sigma
Q3_SIGMA = 0.6745
MEAN_ABS_TO_SIGMA = 1.2533  # mean absolute deviation of a normal is 0.7979 sigma
IQR_FENCE = 1.5  # Tukey's rule: outside [Q1 - 1.5 IQR, Q3 + 1.5 IQR]
RELATIVE_FLOOR = 1e-3
MOVING_SHARE = 0.2
QUANTUM_SHARE_OF_LEVEL = 0.05
ABSOLUTE_FLOOR = 1e-9
SQRT2 = math.sqrt(2.0)

# Severity from the deviation as a multiple of its threshold.
WARNING_RATIO = 1.5
CRITICAL_RATIO = 2.5
# Among methods of the same severity, the one reported (robust ones first).
PREFERENCE: dict[str, int] = {"mad": 3, "z_score": 2, "iqr": 1, "rate_change": 0}


@dataclass(frozen=True, slots=True)
class Finding:
    method: Method
    severity: Severity
    deviation: float  # in the units of threshold
    threshold: float
    expected: float
    sigma: float  # the deviation in sigma units, for the score and confidence


def severity_for(ratio: float) -> Severity:
    if ratio >= CRITICAL_RATIO:
        return "critical"
    if ratio >= WARNING_RATIO:
        return "warning"
    return "info"


def tail_score(sigma: float) -> float:
    """1 - two-sided normal tail probability of a deviation: 0 at the mean, -> 1 far out."""
    return math.erf(sigma / SQRT2)


class SeriesDetector:
    """State for one series: a window plus a handful of floats (see ``window.py`` for costs)."""

    __slots__ = (
        "_alpha",
        "_moving",
        "_prev",
        "_prev_ts",
        "_quantum",
        "_rate_dev",
        "_rate_mean",
        "_rate_n",
        "_rises",
        "_rising",
        "learned",
        "window",
    )

    def __init__(self, window_size: int) -> None:
        self.window = SlidingWindow(window_size)
        self.learned = 0
        self._quantum = math.inf
        # Share of recent points that differ from the previous one (EWMA).
        self._moving = 1.0
        self._prev: float | None = None
        self._prev_ts = 0
        self._rate_mean = 0.0
        self._rate_dev = 0.0
        self._rate_n = 0
        # Consecutive steps that did not fall, and how many of them rose: a counter.
        self._rising = 0
        self._rises = 0
        self._alpha = 2.0 / (window_size + 1)

    def is_counter_reset(self, x: float) -> bool:
        prev = self._prev
        return (
            prev is not None
            and x < prev
            and self._rising >= self.window.size
            and self._rises >= MOVING_SHARE * self._rising
        )

    def _floor(self, level: float) -> float:
        floor = RELATIVE_FLOOR * abs(level)
        # The quantum counts for series that step often (counters) or in small steps relative
        # to their level (integer sensors); in an otherwise flat series the only "step" may be
        # an earlier anomaly, which must not become the yardstick that hides the next one.
        quantum = self._quantum
        if (
            quantum != math.inf
            and quantum > floor
            and (self._moving >= MOVING_SHARE or quantum <= QUANTUM_SHARE_OF_LEVEL * abs(level))
        ):
            floor = quantum
        return floor if floor > ABSOLUTE_FLOOR else ABSOLUTE_FLOOR

    def evaluate(self, x: float, ts: int, config: AnomalyConfig) -> tuple[float, Finding | None]:
        """Score ``x`` against what was learned so far: (score 0..1, strongest finding)."""
        window = self.window
        if len(window) < 2 or self.is_counter_reset(x):
            return 0.0, None
        factor = config.factor
        median = window.median()
        floor = self._floor(median)
        best: Finding | None = None
        best_key = (-1, -1)
        top_sigma = 0.0

        # z-score against the window's mean and standard deviation.
        mean = window.mean
        std = window.std
        d_z = abs(x - mean) / (std if std > floor else floor)
        top_sigma = d_z
        threshold = config.z_threshold * factor
        if d_z >= threshold:
            best, best_key = _consider(best, best_key, "z_score", d_z, threshold, mean, d_z)

        # Median absolute deviation.
        mad_scale = MAD_TO_SIGMA * window.mad(median)
        d_mad = abs(x - median) / (mad_scale if mad_scale > floor else floor)
        if d_mad > top_sigma:
            top_sigma = d_mad
        threshold = config.mad_threshold * factor
        if d_mad >= threshold:
            best, best_key = _consider(best, best_key, "mad", d_mad, threshold, median, d_mad)

        # Interquartile range (Tukey's fences), reported in IQR units beyond the quartile.
        q1 = window.quantile(0.25)
        q3 = window.quantile(0.75)
        iqr = q3 - q1
        iqr_floor = IQR_TO_SIGMA * floor
        if iqr < iqr_floor:
            iqr = iqr_floor
        beyond = (q1 - x) if x < q1 else (x - q3) if x > q3 else 0.0
        if beyond > 0.0:
            d_iqr = beyond / iqr
            sigma = Q3_SIGMA + IQR_TO_SIGMA * d_iqr
            if sigma > top_sigma:
                top_sigma = sigma
            threshold = IQR_FENCE * factor
            if d_iqr >= threshold:
                # Tukey's fence (2.7 sigma) decides; the severity follows the same sigma
                # bands as the other methods, so IQR does not escalate faster than they do.
                ratio = max(1.0, sigma / (config.z_threshold * factor))
                best, best_key = _consider(
                    best, best_key, "iqr", d_iqr, threshold, median, sigma, ratio=ratio
                )

        # Rate of change against the recent typical rate (EWMA of rate and its spread).
        prev = self._prev
        if prev is not None and self._rate_n >= 2 and ts > self._prev_ts:
            dt = (ts - self._prev_ts) / 1000.0
            rate = (x - prev) / dt
            rate_scale = MEAN_ABS_TO_SIGMA * self._rate_dev
            rate_floor = floor / dt
            d_rate = abs(rate - self._rate_mean) / (
                rate_scale if rate_scale > rate_floor else rate_floor
            )
            expected = prev + self._rate_mean * dt
            level = abs(prev) if abs(prev) > floor else floor
            percent = abs(x - expected) / level * 100.0
            rate_threshold = config.rate_threshold * factor
            sigma_threshold = config.z_threshold * factor
            if percent >= rate_threshold:
                if d_rate > top_sigma:
                    top_sigma = d_rate
                if d_rate >= sigma_threshold:
                    ratio = min(d_rate / sigma_threshold, percent / rate_threshold)
                    best, best_key = _consider(
                        best,
                        best_key,
                        "rate_change",
                        percent,
                        rate_threshold,
                        expected,
                        d_rate,
                        ratio=ratio,
                    )
        return tail_score(top_sigma), best

    def learn(self, x: float, ts: int) -> None:
        if self.is_counter_reset(x):
            self._restart(x, ts)
            return
        prev = self._prev
        if prev is not None:
            if x >= prev:
                self._rising += 1
                self._rises += x > prev
            else:
                self._rising = self._rises = 0
            step = abs(x - prev)
            moved = step > 1e-12 * abs(x)
            if moved and step < self._quantum:
                self._quantum = step
            self._moving += self._alpha * ((1.0 if moved else 0.0) - self._moving)
            if ts > self._prev_ts:
                rate = (x - prev) / ((ts - self._prev_ts) / 1000.0)
                if self._rate_n == 0:
                    self._rate_mean = rate
                else:
                    alpha = self._alpha
                    self._rate_dev += alpha * (abs(rate - self._rate_mean) - self._rate_dev)
                    self._rate_mean += alpha * (rate - self._rate_mean)
                self._rate_n += 1
        if prev is None or ts > self._prev_ts:
            self._prev = x
            self._prev_ts = ts
        self.window.push(x)
        self.learned += 1

    def _restart(self, x: float, ts: int) -> None:
        """Forget the level (window, previous point); keep the quantum, which a reset does
        not change."""
        self.window = SlidingWindow(self.window.size)
        self.learned = 0
        self._rising = self._rises = 0
        self._rate_mean = self._rate_dev = 0.0
        self._rate_n = 0
        self._prev = None
        self.learn(x, ts)


def _consider(
    best: Finding | None,
    best_key: tuple[int, int],
    method: Method,
    deviation: float,
    threshold: float,
    expected: float,
    sigma: float,
    ratio: float | None = None,
) -> tuple[Finding | None, tuple[int, int]]:
    severity = severity_for(deviation / threshold if ratio is None else ratio)
    key = (_RANK[severity], PREFERENCE[method])
    if key <= best_key:
        return best, best_key
    return Finding(method, severity, deviation, threshold, expected, sigma), key


_RANK: dict[str, int] = {"info": 0, "warning": 1, "critical": 2}

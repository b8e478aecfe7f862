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
from iotistic_agent.anomaly.window import SlidingWindow, SortedRing

MAD_TO_SIGMA = 1.4826  # MAD of a normal distribution is 0.6745 sigma
IQR_TO_SIGMA = 1.349  # IQR of a normal distribution is 1.349 sigma
Q3_SIGMA = 0.6745
MEAN_ABS_TO_SIGMA = 1.2533  # mean absolute deviation of a normal is 0.7979 sigma
IQR_MIN_FENCE = 0.5  # in IQRs beyond the quartile, whatever the thresholds
RELATIVE_FLOOR = 1e-3
MOVING_SHARE = 0.2
# A value is rare when at most this share of the window (and at least one value) is as far out.
RARE_SHARE = 0.02
# The long memory keeps every LONG_STRIDE-th point, as many as the window: it spans
# LONG_STRIDE windows (at 5-minute samples and the default window, three and a half days).
LONG_STRIDE = 10
# A move is a jump when the value is this share of the threshold away from recent points.
SUDDEN_SHARE = 0.5
RECENT_ALPHA = 0.3
# A step up to this multiple of the largest recent step is a known jump: at most "info".
KNOWN_JUMP_RATIO = 1.5
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
        "_jump",
        "_jump_decay",
        "_moving",
        "_prev",
        "_prev_ts",
        "_quantum",
        "_rate_dev",
        "_rate_mean",
        "_rate_n",
        "_recent",
        "_rises",
        "_rising",
        "learned",
        "long",
        "window",
    )

    def __init__(self, window_size: int) -> None:
        self.window = SlidingWindow(window_size)
        self.long = SortedRing(window_size)
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
        # Where the last few points were (fast EWMA): tells a jump from a gradual move.
        self._recent = 0.0
        # The largest step seen lately, fading over the long memory's span: a jump the series
        # made before (a pump switching on every morning) is known.
        self._jump = 0.0
        self._jump_decay = math.exp(-1.0 / (LONG_STRIDE * window_size))

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
        n = len(window)
        if n < 2 or self.is_counter_reset(x):
            return 0.0, None
        median = window.median()
        floor = self._floor(median)
        sigma_threshold = config.z_threshold * config.factor
        top_sigma = 0.0
        best: Finding | None = None
        best_key = (-1, -1)
        # The level methods speak only for a value that is rare in the window: one that a
        # few recent values already reached (hourly blips, the new level after a shift, a
        # second mode) is part of the series, however far it is in sigma units. Most points
        # are not rare, and cost only these two binary searches and the rate below.
        if window.as_extreme(x, median) <= max(1, int(RARE_SHARE * n)):
            top_sigma, best, best_key = self._level(x, median, floor, sigma_threshold, config)
        sigma, best, best_key = self._rate(x, ts, floor, sigma_threshold, config, best, best_key)
        if sigma > top_sigma:
            top_sigma = sigma
        return tail_score(top_sigma), best

    def _level(
        self, x: float, median: float, floor: float, sigma_threshold: float, config: AnomalyConfig
    ) -> tuple[float, Finding | None, tuple[int, int]]:
        """z-score, MAD and IQR for a value that is rare in the window."""
        window = self.window
        std = window.std
        mad_scale = MAD_TO_SIGMA * window.mad(median)
        if mad_scale == 0.0:
            # Half the window or more sits exactly on the median (a plateau, a two-level
            # signal): MAD says nothing about the spread, and the floor alone would make every
            # step off the plateau critical. The standard deviation stands in.
            mad_scale = std
        if mad_scale < floor:
            mad_scale = floor
        # A value the long memory has often seen (the series goes there every day) is a
        # return to a known level when the series moved there gradually, and at most "info"
        # when it jumped there.
        long = self.long
        known = long.as_extreme(x, median) > max(1, int(RARE_SHARE * len(long)))
        if known and abs(x - self._recent) < SUDDEN_SHARE * sigma_threshold * mad_scale:
            return 0.0, None, (-1, -1)
        best: Finding | None = None
        best_key = (-1, -1)

        # z-score against the window's mean and standard deviation.
        mean = window.mean
        d_z = abs(x - mean) / (std if std > floor else floor)
        top_sigma = d_z
        if d_z >= sigma_threshold:
            best, best_key = _consider(
                best, best_key, "z_score", d_z, sigma_threshold, mean, d_z, cap=known
            )

        # Median absolute deviation.
        d_mad = abs(x - median) / mad_scale
        if d_mad > top_sigma:
            top_sigma = d_mad
        threshold = config.mad_threshold * config.factor
        if d_mad >= threshold:
            best, best_key = _consider(
                best, best_key, "mad", d_mad, threshold, median, d_mad, cap=known
            )

        # Interquartile range (Tukey's fences), reported in IQR units beyond the quartile.
        q1 = window.quantile(0.25)
        q3 = window.quantile(0.75)
        iqr = q3 - q1
        if iqr == 0.0:  # three quarters of the window on one value: as MAD above
            iqr = IQR_TO_SIGMA * std
        iqr_floor = IQR_TO_SIGMA * floor
        if iqr < iqr_floor:
            iqr = iqr_floor
        beyond = (q1 - x) if x < q1 else (x - q3) if x > q3 else 0.0
        if beyond > 0.0:
            d_iqr = beyond / iqr
            sigma = Q3_SIGMA + IQR_TO_SIGMA * d_iqr
            if sigma > top_sigma:
                top_sigma = sigma
            # The fence sits at the same sigma as the z threshold (Tukey's 1.5 IQR is only
            # 2.7 sigma, below it, and raised most of the false alarms on real series);
            # the severity follows the same sigma bands as the other methods.
            threshold = max((sigma_threshold - Q3_SIGMA) / IQR_TO_SIGMA, IQR_MIN_FENCE)
            if d_iqr >= threshold:
                ratio = max(1.0, sigma / sigma_threshold)
                best, best_key = _consider(
                    best, best_key, "iqr", d_iqr, threshold, median, sigma, ratio=ratio, cap=known
                )
        return top_sigma, best, best_key

    def _rate(
        self,
        x: float,
        ts: int,
        floor: float,
        sigma_threshold: float,
        config: AnomalyConfig,
        best: Finding | None,
        best_key: tuple[int, int],
    ) -> tuple[float, Finding | None, tuple[int, int]]:
        """Rate of change against the recent typical rate (EWMA of rate and its spread)."""
        prev = self._prev
        if prev is None or self._rate_n < 2 or ts <= self._prev_ts:
            return 0.0, best, best_key
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
        rate_threshold = config.rate_threshold * config.factor
        if percent < rate_threshold:
            return 0.0, best, best_key
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
                cap=abs(x - prev) <= KNOWN_JUMP_RATIO * self._jump,
            )
        return d_rate, best, best_key

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
            jump = self._jump * self._jump_decay
            self._jump = step if step > jump else jump
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
        self._recent = x if prev is None else self._recent + RECENT_ALPHA * (x - self._recent)
        # A timestamp that went back (a clock reset, a replayed reading) becomes the new
        # reference: a rate against a point "from the future" would be nonsense.
        if prev is None or ts != self._prev_ts:
            self._prev = x
            self._prev_ts = ts
        self.window.push(x)
        if self.learned % LONG_STRIDE == 0:
            self.long.push(x)
        self.learned += 1

    def _restart(self, x: float, ts: int) -> None:
        """Forget the level (window, previous point); keep the quantum, which a reset does
        not change."""
        self.window = SlidingWindow(self.window.size)
        self.long = SortedRing(self.window.size)
        self.learned = 0
        self._rising = self._rises = 0
        self._rate_mean = self._rate_dev = 0.0
        self._rate_n = 0
        self._jump = 0.0
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
    cap: bool = False,
) -> tuple[Finding | None, tuple[int, int]]:
    severity = severity_for(deviation / threshold if ratio is None else ratio)
    if cap:
        severity = "info"
    key = (_RANK[severity], PREFERENCE[method])
    if key <= best_key:
        return best, best_key
    return Finding(method, severity, deviation, threshold, expected, sigma), key


_RANK: dict[str, int] = {"info": 0, "warning": 1, "critical": 2}

"""``AnomalyDetectionService``: the spec's processDataPoint and getSummaryForReport.

With ``ml_enabled`` (and numpy, the ``ml`` extra) every series up to ``ml_max_series`` also
gets an LSTM forecaster (``ml.py``, ``forecast.py``): its residual joins the score and, more
severe than the statistical findings, is reported with method "lstm".

Pure and synchronous: no clock of its own beyond a default timestamp, no I/O, no tasks. The
agent's metrics sampler and sensor readings will call ``process_data_point`` (not wired yet).
"""

from __future__ import annotations

import logging
import math
import time
from collections import deque
from collections.abc import Callable
from typing import Any, NamedTuple

from iotistic_agent.anomaly.config import AnomalyConfig
from iotistic_agent.anomaly.detector import SeriesDetector, tail_score
from iotistic_agent.anomaly.episodes import AlertEpisode
from iotistic_agent.anomaly.ml import Forecasts, create_forecasts, stronger
from iotistic_agent.anomaly.models import SEVERITY_RANK, Detection, Quality, Severity

log = logging.getLogger(__name__)

MAX_MAGNITUDE = 1e100
PRUNE_INTERVAL_MS = 600_000  # idle series are looked for at most this often (O(series))
FULL_PRUNE_INTERVAL_MS = 60_000  # and at most this often when a new series finds no room
UNCERTAIN_CONFIDENCE = 0.5  # confidence multiplier for UNCERTAIN points
_QUALITIES: dict[str, Quality] = {"GOOD": "GOOD", "UNCERTAIN": "UNCERTAIN", "BAD": "BAD"}


class PointResult(NamedTuple):
    score: float  # 0..1, comparable across series; 0 while the series warms up
    detections: list[Detection]


MAX_LOGGED_KEYS = 1000  # metrics whose rejects were logged; beyond this rejects are only counted


def _nothing() -> PointResult:
    return PointResult(0.0, [])  # a fresh list: callers may keep or extend what they get


class AnomalyDetectionService:
    def __init__(
        self,
        config: AnomalyConfig | None = None,
        *,
        clock_ms: Callable[[], int] | None = None,
        monotonic_ms: Callable[[], int] | None = None,
    ) -> None:
        self.config = config or AnomalyConfig()
        self._clock_ms = clock_ms or (lambda: int(time.time() * 1000))
        # Idle series are judged on a clock that never jumps back (the wall clock may).
        self._monotonic_ms = monotonic_ms or (lambda: int(time.monotonic() * 1000))
        self._series: dict[tuple[str, str], SeriesDetector] = {}
        self._episodes: dict[tuple[str, str], AlertEpisode] = {}
        # Wall-clock ms of each series' last reading (sensor timestamps may be replayed).
        self._seen: dict[tuple[str, str], int] = {}
        self._next_prune = 0
        self._next_full_prune = 0
        self._rejected_keys: set[tuple[str, str]] = set()
        self.history: deque[Detection] = deque(maxlen=self.config.history_size)
        self.counters: dict[str, int] = {
            "points": 0,
            "rejected": 0,
            "bad_quality": 0,
            "suppressed": 0,
            "detections": 0,
        }
        self._by_severity: dict[str, int] = {"info": 0, "warning": 0, "critical": 0}
        self._forecasts: Forecasts | None = create_forecasts(self.config)

    def reconfigure(self, config: AnomalyConfig) -> None:
        """New settings at runtime (`iotctl config set`): thresholds apply from the next
        point; a new window size starts the series' learning again."""
        restart = config.window_size != self.config.window_size
        if restart:
            self._series.clear()
            self._episodes.clear()
            self._seen.clear()
        if config.ml_enabled != self.config.ml_enabled:
            self._forecasts = create_forecasts(config)
        elif self._forecasts is not None:
            if restart:
                self._forecasts.clear()
            self._forecasts.max_series = config.ml_max_series
        self.config = config

    @property
    def forecast_count(self) -> int:
        """Series with an LSTM forecaster (0 when ML is off or numpy is missing)."""
        return 0 if self._forecasts is None else len(self._forecasts)

    def _prune_when_full(self, now_ms: int) -> int:
        self._next_full_prune = now_ms + FULL_PRUNE_INTERVAL_MS
        return self.prune_idle(now_ms)

    def prune_idle(self, now_ms: int) -> int:
        """Forget the series without a reading for ``series_idle_ms``; how many went."""
        self._next_prune = now_ms + PRUNE_INTERVAL_MS
        cutoff = now_ms - self.config.series_idle_ms
        idle = [key for key, seen in self._seen.items() if seen < cutoff]
        for key in idle:
            del self._seen[key]
            self._series.pop(key, None)
            self._episodes.pop(key, None)
            if self._forecasts is not None:
                self._forecasts.discard(key)
        if idle:
            log.info(
                "anomaly detection forgot %d series without a reading for %d s",
                len(idle),
                self.config.series_idle_ms // 1000,
            )
        return len(idle)

    @property
    def series_count(self) -> int:
        return len(self._series)

    def process_data_point(
        self,
        source: str,
        metric: str,
        value: object,
        timestamp: object = None,
        quality: object = "GOOD",
    ) -> list[Detection]:
        """Feed one reading; return the detections it raised (at most one, after cool-down)."""
        return self.process(source, metric, value, timestamp, quality).detections

    def process(
        self,
        source: str,
        metric: str,
        value: object,
        timestamp: object = None,
        quality: object = "GOOD",
    ) -> PointResult:
        """Like ``process_data_point`` but also returns the point's anomaly score. Never raises."""
        if not self.config.enabled:
            return _nothing()
        try:
            return self._process(source, metric, value, timestamp, quality)
        except Exception:  # a detector bug must not take the caller's loop down
            self.counters["rejected"] += 1
            if self._first_reject(("failed", repr(metric)[:80])):
                log.exception("anomaly detection failed on a reading of %.80r", metric)
            return _nothing()

    def _process(
        self, source: str, metric: str, value: object, timestamp: object, quality: object
    ) -> PointResult:
        key = (source, metric)
        x = _number(value)
        ts = self._clock_ms() if timestamp is None else _timestamp(timestamp)
        q = _QUALITIES.get(quality.upper()) if isinstance(quality, str) else None
        if (
            x is None
            or ts is None
            or q is None
            or not isinstance(source, str)
            or not isinstance(metric, str)
            or not source
            or not metric
        ):
            self._reject(key, value, timestamp, quality)
            return _nothing()
        self.counters["points"] += 1
        if q == "BAD":  # never learned from, never alerted on
            self.counters["bad_quality"] += 1
            return _nothing()
        now = self._monotonic_ms()
        if now >= self._next_prune:
            self.prune_idle(now)
        detector = self._series.get(key)
        if detector is None:
            # At the cap, a new series looks for idle ones at most once a minute: a flood of new
            # metric names must not cost a scan of every series each.
            if len(self._series) >= self.config.max_series and (
                now < self._next_full_prune or not self._prune_when_full(now)
            ):
                self._reject(key, value, timestamp, quality, reason="too many series")
                return _nothing()
            detector = self._series[key] = SeriesDetector(self.config.window_size)
        self._seen[key] = now

        forecasts = self._forecasts
        lstm_sigma, lstm = (0.0, None) if forecasts is None else forecasts.step(key, x, self.config)
        if detector.learned < self.config.warmup:
            detector.learn(x, ts)
            return _nothing()
        score, finding = detector.evaluate(x, ts, self.config)
        detector.learn(x, ts)
        if forecasts is not None:
            score = max(score, tail_score(lstm_sigma))
            finding = stronger(finding, lstm)
        episode = self._episodes.get(key)
        if finding is None:
            if episode is not None:
                episode.calm()
            return PointResult(score, [])

        severity: Severity = finding.severity
        confidence = score
        if q == "UNCERTAIN":
            confidence *= UNCERTAIN_CONFIDENCE
            if severity == "critical":
                severity = "warning"
        rank = SEVERITY_RANK[severity]
        if episode is None:
            episode = self._episodes[key] = AlertEpisode()
        if not episode.admit(ts, rank, self.config.cooldown_ms):
            self.counters["suppressed"] += 1
            return PointResult(score, [])
        detection = Detection(
            timestamp=ts,
            source=source,
            metric=metric,
            value=x,
            expected=finding.expected,
            method=finding.method,
            severity=severity,
            confidence=round(confidence, 4),
            deviation=round(finding.deviation, 4),
            quality=q,
            threshold=round(finding.threshold, 4),
        )
        self.history.append(detection)
        self.counters["detections"] += 1
        self._by_severity[severity] += 1
        return PointResult(score, [detection])

    def _reject(
        self,
        key: tuple[Any, Any],
        value: object,
        timestamp: object,
        quality: object,
        reason: str = "not a finite number, timestamp or quality",
    ) -> None:
        self.counters["rejected"] += 1
        safe = (str(key[0])[:80], str(key[1])[:80])
        if not self._first_reject(safe):
            return
        log.warning(
            "anomaly detection ignores readings of %s/%s (%s): value=%.60r timestamp=%.40r "
            "quality=%.20r; further rejects of this metric are counted, not logged",
            safe[0],
            safe[1],
            reason,
            value,
            timestamp,
            quality,
        )

    def _first_reject(self, key: tuple[str, str]) -> bool:
        """True the first time ``key`` is rejected, while fewer than MAX_LOGGED_KEYS were."""
        if key in self._rejected_keys or len(self._rejected_keys) >= MAX_LOGGED_KEYS:
            return False
        self._rejected_keys.add(key)
        return True

    def recent(self, limit: int = 10) -> list[Detection]:
        """The last ``limit`` detections, newest first."""
        if limit <= 0:
            return []
        out: list[Detection] = []
        for detection in reversed(self.history):
            out.append(detection)
            if len(out) >= limit:
                break
        return out

    def summary_for_report(self, limit: int = 10) -> dict[str, Any]:
        """What the periodic cloud report carries (the spec's getSummaryForReport): counts
        since start, and the last ``limit`` detections newest first, as spec-shaped dicts."""
        return {
            "total": self.counters["detections"],
            "bySeverity": dict(self._by_severity),
            "monitoredSeries": len(self._series),
            "recent": [d.to_dict() for d in self.recent(limit)],
        }


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        x = float(value)
    except OverflowError:  # an int beyond float range
        return None
    # Beyond 1e100 the window's arithmetic could overflow; no metric or sensor reads that.
    return x if math.isfinite(x) and abs(x) <= MAX_MAGNITUDE else None


def _timestamp(value: object) -> int | None:
    """Unix milliseconds; None (the caller substitutes now) or a finite, non-negative number."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value < 0:
        return None
    try:
        return int(value)
    except (OverflowError, ValueError):
        return None

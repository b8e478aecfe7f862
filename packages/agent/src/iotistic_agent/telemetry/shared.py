"""One collector per data directory for the whole process: its rates (CPU, disk I/O,
per-process CPU) are deltas against the previous collection, whoever asked for it (the
metrics routes, `iotctl status`, the cloud report, the anomaly sampler).

The last metrics summary is kept with its monotonic time, so a caller that can use a recent
one (the cloud report: fresh within its interval) reuses the anomaly sampler's instead of
collecting again."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .collector import MetricsCollector

Summary = dict[str, Any]

_collectors: dict[Path, MetricsCollector] = {}
_summaries: dict[Path, SharedSummary] = {}
_collectors_lock = threading.Lock()


def collector_for(data_dir: Path) -> MetricsCollector:
    with _collectors_lock:
        collector = _collectors.get(data_dir)
        if collector is None:
            collector = _collectors[data_dir] = MetricsCollector(data_dir)
        return collector


class SharedSummary:
    """The last summary from ``collect`` and when it was taken (``clock``: monotonic s)."""

    def __init__(
        self, collect: Callable[[], Summary], clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._collect = collect
        self._clock = clock
        # Held while collecting: a caller arriving meanwhile waits and can reuse the result.
        self._lock = threading.Lock()
        self._last: tuple[float, Summary] | None = None

    def get(self, max_age_s: float = 0.0) -> Summary:
        """A summary taken at most ``max_age_s`` ago (0: always a new collection)."""
        with self._lock:
            if self._last is not None and max_age_s > 0:
                taken_at, summary = self._last
                if self._clock() - taken_at <= max_age_s:
                    return dict(summary)
            # Timed before collecting: the age counted is never less than the real one.
            taken_at = self._clock()
            summary = self._collect()
            self._last = (taken_at, summary)
            return dict(summary)


def summarise(metrics: dict[str, Any]) -> Summary:
    """The summary's fields from a full collection (``SystemMetrics.as_dict()``)."""
    memory, storage = metrics["memoryInfo"], metrics["storageInfo"]
    return {
        "cpuPercent": metrics["cpuUsage"],
        "temperatureC": metrics["cpuTemp"],
        "memoryPercent": memory["percent"],
        "memoryUsedBytes": memory["used"],
        "memoryTotalBytes": memory["total"],
        "storagePercent": storage["percent"],
        "storageUsedBytes": storage["used"],
        "storageTotalBytes": storage["total"],
        "uptimeSeconds": metrics["uptime"],
        "undervolted": metrics["undervolted"],
    }


def _shared_summary(data_dir: Path) -> SharedSummary:
    with _collectors_lock:
        shared = _summaries.get(data_dir)
    if shared is None:
        collector = collector_for(data_dir)
        new = SharedSummary(lambda: summarise(collector.collect(top_processes=False).as_dict()))
        with _collectors_lock:
            shared = _summaries.setdefault(data_dir, new)
    return shared


def metrics_summary(data_dir: Path, max_age_s: float = 0.0) -> Summary:
    """The figures `iotctl status` and the cloud report show (no process list: cheap).

    ``max_age_s``: a summary collected at most this long ago (by anyone) will do; 0 (the
    default) always collects, as the anomaly sampler and `iotctl status` want."""
    return _shared_summary(data_dir).get(max_age_s)

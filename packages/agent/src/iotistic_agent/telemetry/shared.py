"""One collector per data directory for the whole process: its rates (CPU, disk I/O,
per-process CPU) are deltas against the previous collection, whoever asked for it (the
metrics routes, `iotctl status`, the cloud report)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from .collector import MetricsCollector

_collectors: dict[Path, MetricsCollector] = {}
_collectors_lock = threading.Lock()


def collector_for(data_dir: Path) -> MetricsCollector:
    with _collectors_lock:
        collector = _collectors.get(data_dir)
        if collector is None:
            collector = _collectors[data_dir] = MetricsCollector(data_dir)
        return collector


def metrics_summary(data_dir: Path) -> dict[str, Any]:
    """The figures `iotctl status` and the cloud report show (no process list: cheap)."""
    metrics = collector_for(data_dir).collect(top_processes=False).as_dict()
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

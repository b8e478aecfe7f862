"""A few system figures for `iotctl status` (the full metrics collector comes later)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any


def metrics_summary(data_dir: Path) -> dict[str, Any]:
    import psutil  # imported on first use: the agent does not need it to start

    memory = psutil.virtual_memory()
    try:
        disk = psutil.disk_usage(str(data_dir))
        storage: dict[str, Any] = {
            "storagePercent": disk.percent,
            "storageUsedBytes": disk.used,
            "storageTotalBytes": disk.total,
        }
    except OSError:
        storage = {"storagePercent": None, "storageUsedBytes": None, "storageTotalBytes": None}
    return {
        # Since the previous call: the first answer after start-up is 0.0.
        "cpuPercent": psutil.cpu_percent(interval=None),
        "memoryPercent": memory.percent,
        "memoryUsedBytes": memory.total - memory.available,
        "memoryTotalBytes": memory.total,
        **storage,
        "uptimeSeconds": int(time.time() - psutil.boot_time()),
    }

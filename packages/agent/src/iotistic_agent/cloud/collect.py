"""Gather the device's current state for a report from what the agent already knows."""

from __future__ import annotations

import asyncio
import functools
import platform
from pathlib import Path
from typing import Any

from .. import __version__
from ..metrics_summary import metrics_summary
from ..orchestrator.reconciler import Reconciler
from ..orchestrator.status import applications_state
from ..store.target_store import TargetStore
from .report_builder import device_fields


@functools.cache
def os_version() -> str:
    try:
        return platform.freedesktop_os_release().get("PRETTY_NAME") or platform.platform()
    except OSError:
        return platform.platform()


class DeviceStateCollector:
    def __init__(self, targets: TargetStore, reconciler: Reconciler, data_dir: Path) -> None:
        self._targets = targets
        self._reconciler = reconciler
        self._data_dir = data_dir

    async def __call__(self) -> dict[str, Any]:
        # The reconciler's last snapshot: a report never costs an extra engine round trip.
        apps = applications_state(
            self._targets.current_target(),
            self._reconciler.last_snapshot,
            self._reconciler.failures,
        )
        metrics = await asyncio.to_thread(metrics_summary, self._data_dir)
        stored = self._targets.stored
        return device_fields(
            apps, stored.target.config, stored.version, metrics, __version__, os_version()
        )

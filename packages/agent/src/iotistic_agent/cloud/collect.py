"""Gather the device's current state for a report from what the agent already knows."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .. import __version__
from ..engine.protocol import Engine, EngineUnavailable
from ..orchestrator.model import EngineSnapshot
from ..orchestrator.reconciler import Reconciler
from ..orchestrator.status import applications_state
from ..provisioning.host_info import os_version as host_os_version
from ..store.target_store import TargetStore
from ..telemetry.shared import metrics_summary
from .report_builder import device_fields

# The same text the device sent at registration; it does not change while the agent runs.
os_version = functools.cache(host_os_version)


class DeviceStateCollector:
    def __init__(
        self,
        targets: TargetStore,
        reconciler: Reconciler,
        engine: Engine,
        data_dir: Path,
        extra_fields: Callable[[], dict[str, Any]] | None = None,
        metrics_max_age_s: Callable[[], float] = lambda: 0.0,
    ) -> None:
        # How old a metrics sample may be (the report interval: the anomaly sampler's sample
        # is reused rather than collecting twice, and the fields stay fresh within a report).
        self._metrics_max_age_s = metrics_max_age_s
        # Fields other parts of the agent add (the anomaly summary, running simulations).
        self._extra_fields = extra_fields
        self._targets = targets
        self._reconciler = reconciler
        self._engine = engine
        self._data_dir = data_dir

    async def _snapshot(self) -> EngineSnapshot | None:
        # The reconciler's last snapshot: a report costs no extra engine round trip, except
        # before the first pass (right after a start), when reporting without one would
        # tell the cloud that running containers are gone.
        if self._reconciler.last_snapshot is not None:
            return self._reconciler.last_snapshot
        try:
            return await self._engine.snapshot()
        except EngineUnavailable:
            return None

    async def __call__(self) -> dict[str, Any]:
        apps = applications_state(
            self._targets.current_target(), await self._snapshot(), self._reconciler.failures
        )
        metrics = await asyncio.to_thread(
            metrics_summary, self._data_dir, self._metrics_max_age_s()
        )
        stored = self._targets.stored
        fields = device_fields(
            apps, stored.target.config, stored.version, metrics, __version__, os_version()
        )
        if self._extra_fields is not None:
            # A diff carries them only when they changed (a new detection, not every report).
            fields.update(self._extra_fields())
        return fields

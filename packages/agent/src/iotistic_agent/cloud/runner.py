"""Starts cloud sync once the device has credentials and stops it on deprovisioning."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from ..store.device import CloudCredentials
from .sync import CloudSync, SyncTiming, stop_task

log = logging.getLogger("iotistic.cloud")


class CloudSyncRunner:
    def __init__(self, make_sync: Callable[[CloudCredentials], CloudSync]) -> None:
        self._make_sync = make_sync
        self._sync: CloudSync | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def sync(self) -> CloudSync | None:
        return self._sync

    def start(self, credentials: CloudCredentials) -> None:
        """Start syncing (right after provisioning, or at start-up when provisioned)."""
        if self._sync is not None and self._sync.credentials == credentials:
            return
        previous = self._task
        self._sync = self._make_sync(credentials)
        self._task = asyncio.get_running_loop().create_task(
            self._run_after(previous, self._sync), name="cloud-sync"
        )

    async def _run_after(self, previous: asyncio.Task[None] | None, sync: CloudSync) -> None:
        await stop_task(previous)
        await sync.run()

    async def stop(self) -> None:
        task, self._task, self._sync = self._task, None, None
        await stop_task(task)

    def stop_soon(self) -> None:
        """Deprovisioned: stop syncing (callable from synchronous code)."""
        if self._task is not None:
            asyncio.get_running_loop().create_task(self.stop())
            log.info("cloud sync stopped")

    def set_timing(self, timing: SyncTiming) -> None:
        if self._sync is not None:
            self._sync.set_timing(timing)

    def poll_now(self) -> None:
        if self._sync is not None:
            self._sync.poll_now()

    def status(self, endpoint: str | None) -> dict[str, Any]:
        if self._sync is None:
            state = "not provisioned" if endpoint else "not configured"
            return {"state": state, "endpoint": endpoint}
        return self._sync.status()

"""Starts cloud sync once the device has credentials and stops it on deprovisioning."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..store.device import CloudCredentials
from ..task_slot import TaskSlot

if TYPE_CHECKING:  # sync itself is imported only once the device is provisioned
    from .sync import CloudSync
    from .timing import SyncTiming

log = logging.getLogger("iotistic.cloud")


class CloudSyncRunner:
    def __init__(self, make_sync: Callable[[CloudCredentials], CloudSync]) -> None:
        self._make_sync = make_sync
        self._slot: TaskSlot[CloudSync] = TaskSlot("cloud-sync")

    @property
    def sync(self) -> CloudSync | None:
        return self._slot.current

    def start(self, credentials: CloudCredentials) -> None:
        """Start syncing (right after provisioning, or at start-up when provisioned)."""
        sync = self._slot.current
        if sync is not None and sync.credentials == credentials:
            return
        self._slot.replace(self._make_sync(credentials))

    async def stop(self) -> None:
        await self._slot.stop()

    def stop_soon(self) -> None:
        """Deprovisioned: stop syncing (callable from synchronous code)."""
        if self._slot.stop_soon():
            log.info("cloud sync stopped")

    def set_timing(self, timing: SyncTiming) -> None:
        if self.sync is not None:
            self.sync.set_timing(timing)

    def poll_now(self) -> None:
        if self.sync is not None:
            self.sync.poll_now()

    def status(self, endpoint: str | None) -> dict[str, Any]:
        sync = self.sync
        if sync is None:
            state = "not provisioned" if endpoint else "not configured"
            return {"state": state, "endpoint": endpoint}
        return sync.status()

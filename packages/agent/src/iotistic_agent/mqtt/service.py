"""Starts the MQTT connection once the device is provisioned with a broker and stops it on
deprovisioning (the composition root's handle on MQTT; mirrors ``CloudSyncRunner``)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from .credentials import MqttCredentials
from .manager import MqttManager

log = logging.getLogger("iotistic.mqtt")

NOT_CONFIGURED: dict[str, Any] = {
    "state": "not configured",
    "broker": None,
    "lastError": None,
    "queued": 0,
    "reconnects": 0,
}


class MqttService:
    def __init__(self, make_manager: Callable[[MqttCredentials], MqttManager]) -> None:
        self._make_manager = make_manager
        self._manager: MqttManager | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def manager(self) -> MqttManager | None:
        return self._manager

    @property
    def connected(self) -> bool:
        return self._manager is not None and self._manager.connected

    def start(self, credentials: MqttCredentials | None) -> None:
        """Connect (at start-up when provisioned, or right after provisioning); None (no
        broker in the registration) leaves MQTT off."""
        if credentials is None:
            log.info("MQTT not configured: the registration names no broker")
            return
        if self._manager is not None and self._manager.credentials == credentials:
            return
        previous = self._task
        self._manager = self._make_manager(credentials)
        self._task = asyncio.get_running_loop().create_task(
            _run_after(previous, self._manager), name="mqtt"
        )

    async def stop(self) -> None:
        task, self._task, self._manager = self._task, None, None
        await _stop(task)

    def stop_soon(self) -> None:
        """Deprovisioned: disconnect (callable from synchronous code)."""
        if self._task is not None:
            asyncio.get_running_loop().create_task(self.stop())
            log.info("MQTT stopped")

    def status(self) -> dict[str, Any]:
        return self._manager.status() if self._manager is not None else dict(NOT_CONFIGURED)

    async def publish(self, topic: str, payload: bytes | str, qos: int = 0) -> None:
        if self._manager is not None:
            await self._manager.publish(topic, payload, qos)

    async def publish_confirmed(self, topic: str, payload: bytes, qos: int = 1) -> bool:
        manager = self._manager
        return manager is not None and await manager.publish_confirmed(topic, payload, qos)


async def _run_after(previous: asyncio.Task[None] | None, manager: MqttManager) -> None:
    await _stop(previous)
    await manager.run()


async def _stop(task: asyncio.Task[None] | None) -> None:
    if task is None or task.done():
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task

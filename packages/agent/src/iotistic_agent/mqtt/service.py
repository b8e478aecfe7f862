"""Starts the MQTT connection once the device is provisioned with a broker and stops it on
deprovisioning (the composition root's handle on MQTT; its task lives in a ``TaskSlot``)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..task_slot import TaskSlot
from .credentials import MqttCredentials

if TYPE_CHECKING:  # the manager is imported only once the device is provisioned
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
        self._slot: TaskSlot[MqttManager] = TaskSlot("mqtt")

    @property
    def manager(self) -> MqttManager | None:
        return self._slot.current

    @property
    def connected(self) -> bool:
        return self.manager is not None and self.manager.connected

    def start(self, credentials: MqttCredentials | None) -> None:
        """Connect (at start-up when provisioned, or right after provisioning); None (no
        broker in the registration) leaves MQTT off."""
        if credentials is None:
            log.info("MQTT not configured: the registration names no broker")
            return
        if self.manager is not None and self.manager.credentials == credentials:
            return
        self._slot.replace(self._make_manager(credentials))

    async def stop(self) -> None:
        await self._slot.stop()

    def stop_soon(self) -> None:
        """Deprovisioned: disconnect (callable from synchronous code)."""
        if self._slot.stop_soon():
            log.info("MQTT stopped")

    def status(self) -> dict[str, Any]:
        return self.manager.status() if self.manager is not None else dict(NOT_CONFIGURED)

    async def publish(self, topic: str, payload: bytes | str, qos: int = 0) -> None:
        if self.manager is not None:
            await self.manager.publish(topic, payload, qos)

    async def publish_confirmed(self, topic: str, payload: bytes, qos: int = 1) -> bool:
        manager = self.manager
        return manager is not None and await manager.publish_confirmed(topic, payload, qos)

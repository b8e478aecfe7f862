"""The agent's MQTT connection while the device is provisioned with a broker: one
``MqttManager`` per set of credentials, run by ``WhileProvisioned``, and ``MqttLink``, the
handle the rest of the agent publishes through (state reports, the simulation, the Device
API's sensor route) whichever connection runs, or none."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..while_provisioned import WhileProvisioned
from .credentials import MqttCredentials
from .routing import OnReading, OnUpdate

if TYPE_CHECKING:  # the manager is imported only once the device is provisioned
    from .manager import MqttManager


def not_configured() -> dict[str, Any]:
    return {
        "state": "not configured",
        "broker": None,
        "lastError": None,
        "queued": 0,
        "reconnects": 0,
    }


def mqtt_connection(
    on_update: OnUpdate, on_reading: OnReading
) -> WhileProvisioned[MqttCredentials, MqttManager]:
    """``on_update``: the cloud's update trigger arrived; ``on_reading``: a sensor reading."""

    def make(credentials: MqttCredentials) -> MqttManager:
        # Imported here: a device that is not provisioned (local mode) never loads MQTT.
        from .manager import MqttManager

        return MqttManager(credentials, on_update=on_update, on_reading=on_reading)

    return WhileProvisioned("MQTT", make, not_configured)


class MqttLink:
    def __init__(self, connection: WhileProvisioned[MqttCredentials, MqttManager]) -> None:
        self._connection = connection

    @property
    def manager(self) -> MqttManager | None:
        return self._connection.current

    @property
    def connected(self) -> bool:
        manager = self.manager
        return manager is not None and manager.connected

    def status(self) -> dict[str, Any]:
        return self._connection.status()

    async def publish(self, topic: str, payload: bytes | str, qos: int = 0) -> None:
        manager = self.manager
        if manager is not None:
            await manager.publish(topic, payload, qos)

    async def publish_confirmed(self, topic: str, payload: bytes, qos: int = 1) -> bool:
        manager = self.manager
        return manager is not None and await manager.publish_confirmed(topic, payload, qos)

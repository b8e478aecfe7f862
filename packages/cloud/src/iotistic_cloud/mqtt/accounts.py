"""Devices' broker accounts (dynamic-security clients and roles) and the update trigger.

``BrokerAccounts`` is what the services use; ``NoBroker`` stands in when broker management is
off (no MQTT_PASSWORD): registration and deletion then touch only the database, as before.
"""

from __future__ import annotations

import json
import logging
from typing import Any, Protocol

from iotistic_contracts.mqtt import device_acls, device_username, update_topic

from ..services.errors import Unavailable
from .link import BrokerUnavailable, MqttLink, is_harmless

log = logging.getLogger("iotistic.cloud.mqtt")

BROKER_UNAVAILABLE = "MQTT broker is unavailable"


class DeviceAccounts(Protocol):
    async def create_device(self, device_uuid: str, password: str) -> None: ...

    async def delete_device(self, device_uuid: str) -> None: ...

    async def target_changed(self, device_uuid: str, version: int) -> None: ...


class NoBroker:
    async def create_device(self, device_uuid: str, password: str) -> None:
        return None

    async def delete_device(self, device_uuid: str) -> None:
        return None

    async def target_changed(self, device_uuid: str, version: int) -> None:
        return None


def delete_commands(name: str) -> list[dict[str, Any]]:
    return [
        {"command": "deleteClient", "username": name},
        {"command": "deleteRole", "rolename": name},
    ]


def account_commands(device_uuid: str, password: str) -> list[dict[str, Any]]:
    """Create client ``device_<uuid>`` with its own role ``device_<uuid>`` (``device_acls``),
    pinned to the client id ``device_<uuid>``: no other login can take that id (and so
    knock the device off the broker), and this login can use no other."""
    name = device_username(device_uuid)
    commands: list[dict[str, Any]] = [{"command": "createRole", "rolename": name}]
    commands += [
        {"command": "addRoleACL", "rolename": name, "acltype": acltype, "topic": topic,
         "allow": True}
        for acltype, topic in device_acls(device_uuid)
    ]  # fmt: skip
    commands.append(
        {"command": "createClient", "username": name, "password": password, "clientid": name,
         "roles": [{"rolename": name}]}
    )  # fmt: skip
    return commands


def create_commands(device_uuid: str, password: str) -> list[dict[str, Any]]:
    """The account, after deleting a leftover of an earlier failed registration, so that
    registering can be repeated."""
    return delete_commands(device_username(device_uuid)) + account_commands(device_uuid, password)


class BrokerAccounts:
    def __init__(self, link: MqttLink) -> None:
        self._link = link

    async def _run(self, commands: list[dict[str, Any]], action: str) -> None:
        try:
            responses = await self._link.control(commands)
        except BrokerUnavailable as exc:
            log.warning("%s: %s: %s", action, BROKER_UNAVAILABLE, exc)
            raise Unavailable(BROKER_UNAVAILABLE) from None
        for command, response in zip(commands, responses, strict=True):
            error = response.get("error")
            harmless = command["command"].startswith("delete") and is_harmless(str(error))
            if error and not harmless:
                log.error("%s: broker refused %s: %s", action, command["command"], error)
                raise Unavailable(BROKER_UNAVAILABLE)

    async def create_device(self, device_uuid: str, password: str) -> None:
        await self._run(create_commands(device_uuid, password), f"device {device_uuid}")

    async def delete_device(self, device_uuid: str) -> None:
        """Deleting the client also disconnects it (the plugin kicks a deleted client)."""
        name = device_username(device_uuid)
        await self._run(delete_commands(name), f"deleting device {device_uuid}")

    async def target_changed(self, device_uuid: str, version: int) -> None:
        """Best effort: the device polls anyway, so a failure is only logged."""
        payload = json.dumps({"version": version}).encode()
        try:
            await self._link.publish(update_topic(device_uuid), payload, qos=1)
        except BrokerUnavailable as exc:
            log.warning(
                "update trigger for %s not sent (%s); the device picks the target up at its "
                "next poll",
                device_uuid,
                exc,
            )

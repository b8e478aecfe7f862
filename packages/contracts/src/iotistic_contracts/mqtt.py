"""MQTT topics and payloads shared by the agent and the cloud.

Every device topic carries the device's uuid, so one ACL pattern per device keeps each device
inside its own namespace (the broker's dynamic-security roles are built from ``device_acls``):

- ``agent/<uuid>/update``: the cloud asks the device to poll its target now (payload ignored).
- ``iot/device/<uuid>/state``: the device's state report, QoS 1, the same JSON body as
  ``PATCH /api/v1/device/state`` (``StateReport``).
- ``sensor/<uuid>/<metric>``: sensor readings (``SensorReading``), from the simulation and
  from local services.
"""

from __future__ import annotations

from typing import Annotated, Final, Literal

from pydantic import BaseModel, ConfigDict, Field

from .timestamps import Timestamp

CLOUD_MQTT_USERNAME: Final = "iotistic-cloud"
STATE_TOPIC_FILTER: Final = "iot/device/+/state"


def device_username(device_uuid: str) -> str:
    return f"device_{device_uuid}"


def update_topic(device_uuid: str) -> str:
    return f"agent/{device_uuid}/update"


def state_topic(device_uuid: str) -> str:
    return f"iot/device/{device_uuid}/state"


def sensor_topic(device_uuid: str, metric: str) -> str:
    return f"sensor/{device_uuid}/{metric}"


def device_prefixes(device_uuid: str) -> tuple[str, ...]:
    """The topic trees a device may use, as ``<prefix>/#`` patterns."""
    return (f"agent/{device_uuid}", f"iot/device/{device_uuid}", f"sensor/{device_uuid}")


AclType = Literal["publishClientSend", "publishClientReceive", "subscribePattern"]


def device_acls(device_uuid: str) -> list[tuple[AclType, str]]:
    """(dynamic-security ACL type, topic pattern) allowed to a device; everything else is
    denied by the broker's default ACL access."""
    acls: list[tuple[AclType, str]] = []
    for prefix in device_prefixes(device_uuid):
        pattern = f"{prefix}/#"
        acls += [
            ("publishClientSend", pattern),
            ("publishClientReceive", pattern),
            ("subscribePattern", pattern),
        ]
    return acls


def uuid_of_state_topic(topic: str) -> str | None:
    parts = topic.split("/")
    if len(parts) == 4 and parts[:2] == ["iot", "device"] and parts[3] == "state":
        return parts[2]
    return None


class SensorReading(BaseModel):
    """One reading on ``sensor/<uuid>/<metric>`` (the spec's payload)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    timestamp: Timestamp
    value: float
    unit: Annotated[str, Field(max_length=32)]
    sensor_id: Annotated[str, Field(min_length=1, max_length=128)]

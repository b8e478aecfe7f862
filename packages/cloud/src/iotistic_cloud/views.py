"""What admins see: the JSON of the admin API and of the CLI's --json (one shape for both).

No view carries a hash, a password or a key, except CreatedKeyView's one-time ``key``.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from .clock import isoformat
from .db.models import Device, DeviceReport, ProvisioningKey
from .services.keys import key_problem

KeyStatus = Literal["active", "revoked", "expired", "exhausted"]


class _View(BaseModel):
    model_config = ConfigDict(frozen=True)


class KeyView(_View):
    id: int
    fleet: str
    prefix: str
    status: KeyStatus
    maxDevices: int | None
    devicesRegistered: int
    expiresAt: str | None
    revokedAt: str | None
    createdAt: str


class CreatedKeyView(KeyView):
    key: str


class DeviceSummary(_View):
    uuid: str
    deviceId: str
    name: str | None
    type: str | None
    fleet: str | None
    status: Literal["online", "offline"]
    lastSeen: str | None
    registeredAt: str
    targetVersion: int
    lastReportSequence: int | None
    reportedAt: str | None


class DeviceDetail(DeviceSummary):
    mac: str | None
    osVersion: str | None
    agentVersion: str | None
    mqttUsername: str
    provisioningKeyId: int | None
    targetUpdatedAt: str
    # The ETag polls and If-Match use: "<version>-<hash>".
    targetEtag: str
    target: dict[str, Any]
    reportedState: dict[str, Any] | None


class ReportView(_View):
    sequence: int
    full: bool
    reportedAt: str
    receivedAt: str
    body: dict[str, Any]


class TargetUpdateView(_View):
    uuid: str
    version: int
    changed: bool


def key_status(key: ProvisioningKey, now: datetime) -> KeyStatus:
    problem = key_problem(key, now)
    if problem is None:
        return "active"
    if key.revoked_at is not None:
        return "revoked"
    if key.expires_at is not None and key.expires_at <= now:
        return "expired"
    return "exhausted"


def key_view(key: ProvisioningKey, now: datetime) -> KeyView:
    return KeyView(**_key_fields(key, now))


def created_key_view(key: ProvisioningKey, secret: str, now: datetime) -> CreatedKeyView:
    return CreatedKeyView(**_key_fields(key, now), key=secret)


def _key_fields(key: ProvisioningKey, now: datetime) -> dict[str, Any]:
    return {
        "id": key.id,
        "fleet": key.fleet,
        "prefix": key.prefix,
        "status": key_status(key, now),
        "maxDevices": key.max_devices,
        "devicesRegistered": key.devices_registered,
        "expiresAt": isoformat(key.expires_at),
        "revokedAt": isoformat(key.revoked_at),
        "createdAt": isoformat(key.created_at),
    }


def is_online(device: Device, now: datetime, offline_after_s: int) -> bool:
    last_seen = device.last_seen
    return last_seen is not None and now - last_seen <= timedelta(seconds=offline_after_s)


def device_summary(device: Device, now: datetime, offline_after_s: int) -> DeviceSummary:
    return DeviceSummary(**_summary_fields(device, now, offline_after_s))


def device_detail(device: Device, now: datetime, offline_after_s: int) -> DeviceDetail:
    return DeviceDetail(
        **_summary_fields(device, now, offline_after_s),
        mac=device.mac,
        osVersion=device.os_version,
        agentVersion=device.agent_version,
        mqttUsername=device.mqtt_username,
        provisioningKeyId=device.provisioning_key_id,
        targetUpdatedAt=isoformat(device.target_updated_at),
        targetEtag=device.target_etag,
        target=device.target_state,
        reportedState=device.reported_state,
    )


def _summary_fields(device: Device, now: datetime, offline_after_s: int) -> dict[str, Any]:
    return {
        "uuid": device.uuid,
        "deviceId": device.device_id,
        "name": device.name,
        "type": device.device_type,
        "fleet": device.fleet,
        "status": "online" if is_online(device, now, offline_after_s) else "offline",
        "lastSeen": isoformat(device.last_seen),
        "registeredAt": isoformat(device.registered_at),
        "targetVersion": device.target_version,
        "lastReportSequence": device.last_report_sequence,
        "reportedAt": isoformat(device.reported_at),
    }


def report_view(report: DeviceReport) -> ReportView:
    return ReportView(
        sequence=report.sequence,
        full=report.full,
        reportedAt=report.reported_at,
        receivedAt=isoformat(report.received_at) or "",
        body=report.body,
    )

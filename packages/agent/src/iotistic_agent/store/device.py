"""The device's identity (created on first start) and its cloud registration."""

from __future__ import annotations

import json
import logging
import sqlite3
import uuid
from collections.abc import Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

from ..mqtt.credentials import MqttCredentials, parse_broker
from .db import transaction

log = logging.getLogger("iotistic.agent")

_IDENTITY_COLUMNS = (
    "uuid, deviceName, provisioned, deviceId, deviceType, apiEndpoint, registeredAt, "
    "deprovisionedAt, mqttBrokerUrl, mqttUsername"
)


@dataclass(frozen=True)
class DeviceIdentity:
    """What may be shown to anyone with the Device API key: no secrets here."""

    uuid: str
    name: str | None
    provisioned: bool
    device_id: str | None = None
    device_type: str | None = None
    endpoint: str | None = None
    registered_at: int | None = None  # unix seconds
    deprovisioned_at: int | None = None  # unix seconds, set by an operator's deprovision
    mqtt_broker_url: str | None = None
    mqtt_username: str | None = None


@dataclass(frozen=True)
class CloudCredentials:
    """How this device talks to its cloud; only exists while the device is provisioned."""

    uuid: str
    endpoint: str
    api_key: str = field(repr=False)
    ca_cert: str | None
    verify_tls: bool


@dataclass(frozen=True)
class DeviceRegistration:
    """Everything a successful registration stores, written in one transaction."""

    device_id: str
    device_name: str | None
    device_type: str | None
    api_key: str = field(repr=False)
    api_endpoint: str
    registered_at: int
    mqtt_broker_url: str
    mqtt_username: str
    mqtt_password: str = field(repr=False)
    mqtt_broker_config: Mapping[str, Any]
    api_tls_config: Mapping[str, Any] | None


def _identity(row: sqlite3.Row) -> DeviceIdentity:
    return DeviceIdentity(
        uuid=row["uuid"],
        name=row["deviceName"],
        provisioned=bool(row["provisioned"]),
        device_id=row["deviceId"],
        device_type=row["deviceType"],
        endpoint=row["apiEndpoint"],
        registered_at=row["registeredAt"],
        deprovisioned_at=row["deprovisionedAt"],
        mqtt_broker_url=row["mqttBrokerUrl"],
        mqtt_username=row["mqttUsername"],
    )


def _tls_config(text: str | None) -> dict[str, Any]:
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        # Stored by us, so this is corruption: fall back to the safe default (verify, system CAs).
        log.warning("stored API TLS configuration is not valid JSON; using the defaults")
        return {}
    return value if isinstance(value, dict) else {}


class DeviceStore:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def _row(self) -> sqlite3.Row | None:
        row: sqlite3.Row | None = self._conn.execute(
            f"SELECT {_IDENTITY_COLUMNS} FROM device WHERE id = 1"
        ).fetchone()
        return row

    def identity(self) -> DeviceIdentity:
        row = self._row()
        if row is None:
            raise LookupError("the device has no identity yet (ensure_identity runs at start)")
        return _identity(row)

    def set_name(self, name: str | None) -> None:
        self._conn.execute(
            "UPDATE device SET deviceName = ?, updatedAt = CURRENT_TIMESTAMP WHERE id = 1", (name,)
        )

    def ensure_identity(self, name: str | None = None) -> DeviceIdentity:
        if self._row() is None:
            self._conn.execute(
                "INSERT OR IGNORE INTO device (id, uuid, deviceName) VALUES (1, ?, ?)",
                (str(uuid.uuid4()), name),
            )
        return self.identity()

    def cloud_credentials(self) -> CloudCredentials | None:
        """The cloud endpoint and this device's API key; None unless provisioned."""
        row = self._conn.execute(
            "SELECT uuid, provisioned, apiEndpoint, apiKey, apiTlsConfig FROM device WHERE id = 1"
        ).fetchone()
        if row is None or not row["provisioned"] or not row["apiEndpoint"] or not row["apiKey"]:
            return None
        tls = _tls_config(row["apiTlsConfig"])
        ca_cert = tls.get("caCert")
        return CloudCredentials(
            uuid=row["uuid"],
            endpoint=row["apiEndpoint"],
            api_key=row["apiKey"],
            ca_cert=ca_cert if isinstance(ca_cert, str) and ca_cert.strip() else None,
            # Only an explicit false turns verification off.
            verify_tls=tls.get("verifyCertificate") is not False,
        )

    def mqtt_credentials(self) -> MqttCredentials | None:
        """The MQTT broker and this device's login; None unless provisioned with a broker."""
        row = self._conn.execute(
            "SELECT uuid, provisioned, mqttBrokerUrl, mqttUsername, mqttPassword, "
            "mqttBrokerConfig FROM device WHERE id = 1"
        ).fetchone()
        if row is None or not row["provisioned"] or not row["mqttUsername"]:
            return None
        broker = parse_broker(row["mqttBrokerConfig"], row["mqttBrokerUrl"])
        if broker is None:
            return None
        return MqttCredentials(
            uuid=row["uuid"],
            username=row["mqttUsername"],
            password=row["mqttPassword"] or "",
            broker=broker,
        )

    def save_registration(self, registration: DeviceRegistration) -> None:
        """Store a registration and mark the device provisioned: all of it or nothing."""
        r = registration
        # Serialise before the transaction: a value that cannot be stored writes nothing.
        broker_config = json.dumps(dict(r.mqtt_broker_config))
        tls_config = json.dumps(dict(r.api_tls_config)) if r.api_tls_config is not None else None
        with self._transaction():
            updated = self._conn.execute(
                "UPDATE device SET deviceId = ?, deviceName = ?, deviceType = ?, apiKey = ?, "
                "apiEndpoint = ?, registeredAt = ?, provisioned = 1, deprovisionedAt = NULL, "
                "mqttBrokerUrl = ?, mqttUsername = ?, mqttPassword = ?, mqttBrokerConfig = ?, "
                "apiTlsConfig = ?, updatedAt = CURRENT_TIMESTAMP WHERE id = 1",
                (
                    r.device_id,
                    r.device_name,
                    r.device_type,
                    r.api_key,
                    r.api_endpoint,
                    r.registered_at,
                    r.mqtt_broker_url,
                    r.mqtt_username,
                    r.mqtt_password,
                    broker_config,
                    tls_config,
                ),
            ).rowcount
            if updated != 1:
                raise LookupError("the device has no identity to register")

    def mark_deprovisioned(self, at: int) -> None:
        """Provisioned no more; the uuid, API key and registration details stay (spec:
        deprovision keeps the UUID and device API key)."""
        self._conn.execute(
            "UPDATE device SET provisioned = 0, deprovisionedAt = ?, "
            "updatedAt = CURRENT_TIMESTAMP WHERE id = 1",
            (at,),
        )

    def _transaction(self) -> AbstractContextManager[None]:
        return transaction(self._conn)

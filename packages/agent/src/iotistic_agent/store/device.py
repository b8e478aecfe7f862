"""The device's identity, created on first start."""

from __future__ import annotations

import sqlite3
import uuid
from dataclasses import dataclass


@dataclass(frozen=True)
class DeviceIdentity:
    uuid: str
    name: str | None
    provisioned: bool


class DeviceStore:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def identity(self) -> DeviceIdentity:
        row = self._conn.execute("SELECT uuid, deviceName, provisioned FROM device").fetchone()
        return DeviceIdentity(row["uuid"], row["deviceName"], bool(row["provisioned"]))

    def set_name(self, name: str | None) -> None:
        self._conn.execute(
            "UPDATE device SET deviceName = ?, updatedAt = CURRENT_TIMESTAMP WHERE id = 1", (name,)
        )

    def ensure_identity(self, name: str | None = None) -> DeviceIdentity:
        row = self._conn.execute("SELECT uuid, deviceName, provisioned FROM device").fetchone()
        if row is None:
            self._conn.execute(
                "INSERT OR IGNORE INTO device (id, uuid, deviceName) VALUES (1, ?, ?)",
                (str(uuid.uuid4()), name),
            )
            row = self._conn.execute("SELECT uuid, deviceName, provisioned FROM device").fetchone()
        return DeviceIdentity(row["uuid"], row["deviceName"], bool(row["provisioned"]))

"""Runtime configuration set through the Device API, persisted over the environment.
Writes raise StorageError (store/errors.py) when the disk is full or takes no writes."""

from __future__ import annotations

import sqlite3

from .errors import storage_errors


class ConfigStore:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def overrides(self) -> dict[str, str]:
        rows = self._conn.execute("SELECT key, value FROM config")
        return {r["key"]: r["value"] for r in rows}

    def set(self, key: str, value: str) -> None:
        with storage_errors():
            self._conn.execute(
                "INSERT INTO config (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET "
                "value = excluded.value, updatedAt = CURRENT_TIMESTAMP",
                (key, value),
            )

    def clear(self) -> None:
        with storage_errors():
            self._conn.execute("DELETE FROM config")

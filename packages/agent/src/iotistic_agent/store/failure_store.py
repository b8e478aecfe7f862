"""Per-service failure records in SQLite, so backoff and give-up survive a restart."""

from __future__ import annotations

import sqlite3

from ..orchestrator.model import FailureRecord, ServiceKey


class SqliteFailureStore:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def load_failures(self) -> dict[ServiceKey, FailureRecord]:
        rows = self._conn.execute("SELECT * FROM service_status").fetchall()
        return {
            (row["app_id"], row["service_name"]): FailureRecord(
                reason=row["reason"],
                message=row["message"],
                retry_count=row["retry_count"],
                next_retry_at=row["next_retry_at"],
                last_failure_at=row["last_failure_at"],
                config_hash=row["config_hash"],
                gave_up=bool(row["gave_up"]),
                marker=row["marker"],
            )
            for row in rows
        }

    def put_failure(self, key: ServiceKey, record: FailureRecord) -> None:
        self._conn.execute(
            "INSERT OR REPLACE INTO service_status (app_id, service_name, reason, message, "
            "retry_count, next_retry_at, last_failure_at, config_hash, gave_up, marker) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                key[0],
                key[1],
                record.reason,
                record.message,
                record.retry_count,
                record.next_retry_at,
                record.last_failure_at,
                record.config_hash,
                int(record.gave_up),
                record.marker,
            ),
        )

    def delete_failure(self, key: ServiceKey) -> None:
        self._conn.execute("DELETE FROM service_status WHERE app_id = ? AND service_name = ?", key)

"""Cloud sync's persistent bits: the bounded report queue and a few key/value settings."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from .db import transaction


@dataclass(frozen=True)
class QueuedReport:
    sequence: int
    body: str


class SyncStore:
    def __init__(self, conn: sqlite3.Connection, max_queued: int) -> None:
        self._conn = conn
        self._max_queued = max_queued

    # --- key/value ---------------------------------------------------------------------

    def get(self, key: str) -> str | None:
        row = self._conn.execute("SELECT value FROM sync_state WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row["value"])

    def put(self, key: str, value: str | None) -> None:
        if value is None:
            self._conn.execute("DELETE FROM sync_state WHERE key = ?", (key,))
        else:
            self._conn.execute(
                "INSERT INTO sync_state (key, value) VALUES (?, ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (key, value),
            )

    # --- report queue ------------------------------------------------------------------

    def enqueue(self, sequence: int, body: str, now: float) -> int:
        """Append a report; when over the bound, drop the oldest. Returns how many dropped."""
        with transaction(self._conn):
            self._conn.execute(
                "INSERT INTO report_queue (sequence, body, createdAt) VALUES (?, ?, ?)",
                (sequence, body, now),
            )
            dropped = self._conn.execute(
                "DELETE FROM report_queue WHERE sequence NOT IN "
                "(SELECT sequence FROM report_queue ORDER BY sequence DESC LIMIT ?)",
                (self._max_queued,),
            ).rowcount
        return int(dropped)

    def oldest(self) -> QueuedReport | None:
        row = self._conn.execute(
            "SELECT sequence, body FROM report_queue ORDER BY sequence LIMIT 1"
        ).fetchone()
        return None if row is None else QueuedReport(int(row["sequence"]), str(row["body"]))

    def remove(self, sequence: int) -> None:
        self._conn.execute("DELETE FROM report_queue WHERE sequence = ?", (sequence,))

    def max_sequence(self) -> int:
        row = self._conn.execute("SELECT MAX(sequence) FROM report_queue").fetchone()
        return int(row[0] or 0)

    def queued(self) -> int:
        return int(self._conn.execute("SELECT COUNT(*) FROM report_queue").fetchone()[0])

    def clear(self) -> None:
        self._conn.execute("DELETE FROM report_queue")

"""Detected anomalies in SQLite: every detection kept, up to a bound (oldest dropped first)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Mapping
from typing import Any, Final

from .db import transaction

DEFAULT_MAX_ROWS: Final = 10_000
# Pruning runs once this many rows past the bound, not on every insert.
PRUNE_SLACK: Final = 100
_FIELDS: Final = (
    "timestamp", "source", "metric", "value", "expected", "method", "severity",
    "confidence", "deviation", "quality", "threshold",
)  # fmt: skip


class AnomalyStore:
    def __init__(self, conn: sqlite3.Connection, max_rows: int = DEFAULT_MAX_ROWS) -> None:
        self._conn = conn
        self._max_rows = max_rows
        self._rows = int(conn.execute("SELECT COUNT(*) FROM anomaly_detections").fetchone()[0])

    def add(self, detections: Iterable[Mapping[str, Any]]) -> None:
        rows = [
            (*(d.get(f) for f in _FIELDS), json.dumps(d["metadata"]) if d.get("metadata") else None)
            for d in detections
        ]
        if not rows:
            return
        with transaction(self._conn):
            self._conn.executemany(
                f"INSERT INTO anomaly_detections ({', '.join(_FIELDS)}, metadata) "
                f"VALUES ({', '.join('?' * (len(_FIELDS) + 1))})",
                rows,
            )
            self._rows += len(rows)
            if self._rows > self._max_rows + PRUNE_SLACK:
                self._conn.execute(
                    "DELETE FROM anomaly_detections WHERE id NOT IN "
                    "(SELECT id FROM anomaly_detections ORDER BY id DESC LIMIT ?)",
                    (self._max_rows,),
                )
                self._rows = self._max_rows

    def recent(
        self, limit: int = 100, metric: str | None = None, severity: str | None = None
    ) -> list[dict[str, Any]]:
        """Newest first."""
        query = f"SELECT {', '.join(_FIELDS)}, metadata FROM anomaly_detections"
        where, args = [], []
        if metric is not None:
            where.append("metric = ?")
            args.append(metric)
        if severity is not None:
            where.append("severity = ?")
            args.append(severity)
        if where:
            query += " WHERE " + " AND ".join(where)
        query += " ORDER BY id DESC LIMIT ?"
        rows = self._conn.execute(query, (*args, limit)).fetchall()
        result = []
        for row in rows:
            item = {f: row[f] for f in _FIELDS}
            if row["metadata"]:
                item["metadata"] = json.loads(row["metadata"])
            result.append(item)
        return result

    def count(self) -> int:
        return self._rows

"""Whether this agent adopts the engine objects an earlier release left without a device
UUID label; migration 007 decided it once (see engine/ownership.py)."""

from __future__ import annotations

import sqlite3


def adopts_unlabelled(conn: sqlite3.Connection) -> bool:
    row = conn.execute("SELECT adopt_unlabelled FROM engine_ownership WHERE id = 1").fetchone()
    return bool(row is not None and row[0])

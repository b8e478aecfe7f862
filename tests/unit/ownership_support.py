"""A database as a release before device UUID labels left it (migration 007 adds them)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from iotistic_agent.store.db import migrations, statements

OWNERSHIP_MIGRATION = 7  # store/migrations/007_engine_ownership.sql


def old_release_database(path: Path, device_uuid: str) -> None:
    """Every migration before the device label, and the device's identity."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, isolation_level=None)
    for number, _, sql in migrations():
        if number < OWNERSHIP_MIGRATION:
            for statement in statements(sql):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {number}")
    conn.execute("INSERT INTO device (id, uuid) VALUES (1, ?)", (device_uuid,))
    conn.close()

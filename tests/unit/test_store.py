"""SQLite store: numbered migrations under PRAGMA user_version, persisted target and failures."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from iotistic_agent.orchestrator.model import FailureRecord
from iotistic_agent.store.db import migrate, migrations, open_database
from iotistic_agent.store.device import DeviceStore
from iotistic_agent.store.failure_store import SqliteFailureStore
from iotistic_agent.store.target_store import TargetStore
from iotistic_contracts import parse_target_state

TARGET = {
    "apps": {
        "1001": {
            "appId": 1001,
            "appName": "demo",
            "services": [{"serviceId": 1, "serviceName": "web", "imageName": "reg/web:v1"}],
        }
    }
}


def test_migrations_are_numbered_without_gaps_and_applied_once(tmp_path: Path) -> None:
    conn = open_database(tmp_path / "d.sqlite")
    latest = migrations()[-1][0]
    assert conn.execute("PRAGMA user_version").fetchone()[0] == latest
    assert migrate(conn) == latest  # a second run applies nothing
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_a_failing_migration_leaves_the_database_untouched(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    conn = sqlite3.connect(tmp_path / "d.sqlite", isolation_level=None)
    broken = [(1, "001_x.sql", "CREATE TABLE a (x INTEGER); CREATE TABLE oops (")]
    monkeypatch.setattr("iotistic_agent.store.db.migrations", lambda: broken)
    with pytest.raises(RuntimeError, match=r"001_x\.sql"):
        migrate(conn)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 0
    assert conn.execute("SELECT name FROM sqlite_master WHERE name = 'a'").fetchone() is None


# A trigger's body and literals hold semicolons; so may comments. Splitting on every `;`
# cut these apart (the migration failed, or worse, ran half a statement).
TRICKY_MIGRATION = """
-- a note; with a semicolon
CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL, changes INTEGER DEFAULT 0);
CREATE TABLE audit (note_id INTEGER, says TEXT);
CREATE TRIGGER notes_audit AFTER UPDATE ON notes BEGIN
    UPDATE notes SET changes = changes + 1 WHERE id = NEW.id;
    INSERT INTO audit (note_id, says) VALUES (NEW.id, 'changed; twice -- not a comment');
END;
INSERT INTO notes (body) VALUES ('first; second'); /* a block comment; too */
INSERT INTO notes (body) VALUES ('it''s; fine');
"""


def test_a_migration_with_a_trigger_and_semicolons_in_literals_applies_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    conn = sqlite3.connect(tmp_path / "d.sqlite", isolation_level=None)
    monkeypatch.setattr(
        "iotistic_agent.store.db.migrations", lambda: [(1, "001_tricky.sql", TRICKY_MIGRATION)]
    )
    assert migrate(conn) == 1
    rows = conn.execute("SELECT body FROM notes ORDER BY id").fetchall()
    assert [r[0] for r in rows] == ["first; second", "it's; fine"]
    conn.execute("UPDATE notes SET body = 'edited' WHERE id = 1")
    assert conn.execute("SELECT changes FROM notes WHERE id = 1").fetchone()[0] == 1
    audit = conn.execute("SELECT note_id, says FROM audit").fetchall()
    assert audit == [(1, "changed; twice -- not a comment")]


def test_a_trigger_cut_short_fails_the_migration_and_changes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    conn = sqlite3.connect(tmp_path / "d.sqlite", isolation_level=None)
    unfinished = "CREATE TABLE t (x); CREATE TRIGGER t_ai AFTER INSERT ON t BEGIN SELECT 1;"
    monkeypatch.setattr(
        "iotistic_agent.store.db.migrations", lambda: [(1, "001_cut.sql", unfinished)]
    )
    with pytest.raises(RuntimeError, match=r"001_cut\.sql"):
        migrate(conn)
    assert conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0] == 0
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 0


def test_device_identity_is_created_once(tmp_path: Path) -> None:
    path = tmp_path / "d.sqlite"
    first = DeviceStore(open_database(path)).ensure_identity()
    again = DeviceStore(open_database(path)).ensure_identity()
    assert first.uuid == again.uuid and len(first.uuid) == 36


def test_target_is_persisted_with_hash_and_version_and_reloaded(tmp_path: Path) -> None:
    path = tmp_path / "d.sqlite"
    store = TargetStore(open_database(path))
    assert store.stored.version == 0 and store.current_target() == {}
    target = parse_target_state(TARGET)
    assert store.save(target, source="local") is True
    assert store.save(target, source="local") is False  # same content: no new version
    reloaded = TargetStore(open_database(path))
    assert reloaded.stored.version == 1
    assert reloaded.stored.state_hash == target.state_hash()
    assert [s.service_name for s in reloaded.current_target()[1001].services] == ["web"]


def test_failure_records_round_trip(tmp_path: Path) -> None:
    conn = open_database(tmp_path / "d.sqlite")
    store = SqliteFailureStore(conn)
    record = FailureRecord("ImagePullBackOff", "manifest unknown", 2, 30.0, 10.0, "abc", False, "m")
    store.put_failure((1001, "web"), record)
    assert SqliteFailureStore(conn).load_failures() == {(1001, "web"): record}
    store.delete_failure((1001, "web"))
    assert store.load_failures() == {}


def test_the_database_file_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    open_database(tmp_path / "d.sqlite")
    for name in ("d.sqlite", "d.sqlite-wal"):
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o600

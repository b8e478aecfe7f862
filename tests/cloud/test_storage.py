"""Storage details that protect secrets and keep the two databases alike."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from iotistic_cloud.db.engine import Database
from iotistic_cloud.settings import database_url
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from tests.support.cloud_process import CloudProcess

INSERT_KEY = text(
    "INSERT INTO provisioning_keys (id, fleet, key_hash, prefix, devices_registered, created_at)"
    " VALUES (1, 'fleet', :secret, 'prefix', 0, CURRENT_TIMESTAMP)"
)


async def test_database_errors_do_not_carry_the_values(db: Database) -> None:
    """An error that reaches a log must not show a hash or a key it was given."""
    secret = "b1e6d0c4-this-must-not-appear-in-logs"
    with pytest.raises(IntegrityError) as caught:
        async with db.engine.begin() as conn:
            await conn.execute(INSERT_KEY, {"secret": secret})
            await conn.execute(INSERT_KEY, {"secret": secret})
    assert secret not in str(caught.value)
    assert "hidden due to hide_parameters" in str(caught.value)


async def test_foreign_keys_are_enforced(db: Database) -> None:
    with pytest.raises(IntegrityError):
        async with db.engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO device_reports"
                    ' (device_uuid, sequence, "full", reported_at, received_at, body)'
                    " VALUES ('no-such-device', 1, false, 't', CURRENT_TIMESTAMP, '{}')"
                )
            )


async def test_sqlite_runs_in_wal_mode_with_foreign_keys(tmp_path: Path) -> None:
    database = Database(database_url(f"sqlite:///{tmp_path / 'nested' / 'cloud.sqlite'}"))
    try:
        async with database.engine.connect() as conn:
            assert (await conn.execute(text("PRAGMA journal_mode"))).scalar() == "wal"
            assert (await conn.execute(text("PRAGMA foreign_keys"))).scalar() == 1
        assert (tmp_path / "nested").stat().st_mode & 0o777 == 0o700
    finally:
        await database.dispose()


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_sqlite_file_and_its_folder_are_private(tmp_path: Path) -> None:
    """It holds unexpired key-exchange private keys: 0600 (and its -wal and -shm files,
    which SQLite creates alike) in a 0700 folder, whatever the umask, from the real serve."""
    data_dir = tmp_path / "data" / "cloud"
    previous = os.umask(0o022)
    try:
        cloud = CloudProcess(tmp_path, CLOUD_DATA_DIR=str(data_dir)).start()
    finally:
        os.umask(previous)
    try:
        assert cloud.cli("keys", "create", "--quiet").returncode == 0
        database = data_dir / "cloud.sqlite"
        assert mode_of(data_dir) == 0o700
        for path in (database, Path(f"{database}-wal"), Path(f"{database}-shm")):
            assert mode_of(path) == 0o600, path
    finally:
        cloud.stop()


def test_a_database_file_with_wider_permissions_is_narrowed(tmp_path: Path) -> None:
    """As an earlier release left it (0644), or a restore copied it."""
    database = tmp_path / "cloud.sqlite"
    cli = CloudProcess(tmp_path, DATABASE_URL=f"sqlite:///{database}")
    assert cli.cli("devices", "list").returncode == 0
    database.chmod(0o644)
    result = cli.cli("devices", "list")
    assert result.returncode == 0, result.stderr
    assert mode_of(database) == 0o600

"""The backup and restore procedures of docs/cloud.md, on both databases: a backup taken
while the cloud runs, restored into a new cloud, which then serves the same devices
(their keys work, their target and reported state are those of the backup's moment)."""

from __future__ import annotations

import shutil
import stat
from collections.abc import Callable
from pathlib import Path

import httpx

from tests.cloud.device_kit import REPORT, SimDevice, provision, report, target
from tests.support.cloud_process import CloudProcess
from tests.support.postgres import PostgresServer

WAIT_S = 30
BACKED_UP = target((1001, "web", "nginx:1.25"))
LATER = target((1001, "web", "nginx:1.27"))


async def fill(cloud: CloudProcess) -> SimDevice:
    """A device with a target (version 1) and a full report."""
    key = cloud.cli("keys", "create", "--quiet").stdout.strip()
    async with httpx.AsyncClient(base_url=cloud.url, timeout=WAIT_S) as client:
        device = await provision(client, key, name="kept")
        path = f"/api/admin/v1/devices/{device.uuid}/target"
        put = await client.put(path, json=BACKED_UP, headers=cloud.admin_headers)
        assert put.json()["version"] == 1
        sent = await client.patch(
            REPORT, json=report(device.uuid, 1, full=True, uptime=7), headers=device.auth
        )
        assert sent.json()["status"] == "accepted"
    return device


async def change_after_backup(cloud: CloudProcess, device: SimDevice) -> None:
    async with httpx.AsyncClient(base_url=cloud.url, timeout=WAIT_S) as client:
        path = f"/api/admin/v1/devices/{device.uuid}/target"
        put = await client.put(path, json=LATER, headers=cloud.admin_headers)
        assert put.json()["version"] == 2


async def check_restored(cloud: CloudProcess, device: SimDevice) -> None:
    """The restored cloud knows the device and its key, as of the backup."""
    async with httpx.AsyncClient(base_url=cloud.url, timeout=WAIT_S) as client:
        polled = await client.get(device.state_path, headers=device.auth)
        assert polled.status_code == 200, polled.text
        state = polled.json()[device.uuid]
        assert (state["version"], state["apps"]) == (1, BACKED_UP["apps"])
        shown = await client.get(
            f"/api/admin/v1/devices/{device.uuid}", headers=cloud.admin_headers
        )
        assert shown.json()["reportedState"]["uptime"] == 7
        sent = await client.patch(
            REPORT, json=report(device.uuid, 2, uptime=8), headers=device.auth
        )
        assert sent.json() == {"status": "accepted", "sequence": 2}
        # Writable, and the admin token (kept in the environment) still opens it.
        path = f"/api/admin/v1/devices/{device.uuid}/target"
        put = await client.put(path, json=LATER, headers=cloud.admin_headers)
        assert put.json()["version"] == 2


async def backup_and_restore(
    old: CloudProcess, new: CloudProcess, take: Callable[[], None], restore: Callable[[], None]
) -> None:
    old.start()
    try:
        device = await fill(old)
        take()  # while the cloud runs
        await change_after_backup(old, device)
    finally:
        old.stop()
    restore()
    new.start()
    try:
        await check_restored(new, device)
    finally:
        new.stop()
    assert "Traceback" not in new.log()


async def test_sqlite_backup_restored_into_a_new_cloud(tmp_path: Path) -> None:
    backup = tmp_path / "backups" / "cloud.sqlite"
    backup.parent.mkdir()
    old = CloudProcess(tmp_path / "old")
    new = CloudProcess(tmp_path / "new")

    def take() -> None:
        result = old.cli("backup", str(backup))
        assert result.returncode == 0, result.stderr
        assert stat.S_IMODE(backup.stat().st_mode) == 0o600
        # Never over an existing file.
        again = old.cli("backup", str(backup))
        assert again.returncode == 1
        assert "exists" in again.stderr

    def restore() -> None:
        # The documented restore: the file in place (0600), no -wal or -shm beside it.
        new.data_dir.mkdir(mode=0o700)
        shutil.copyfile(backup, new.data_dir / "cloud.sqlite")
        (new.data_dir / "cloud.sqlite").chmod(0o600)

    await backup_and_restore(old, new, take, restore)


async def test_postgresql_dump_restored_into_a_new_database(
    postgres: PostgresServer, tmp_path: Path
) -> None:
    old = CloudProcess(tmp_path / "old", database_url=postgres.create_database("before_backup"))
    new = CloudProcess(tmp_path / "new", database_url=postgres.create_database("restored"))
    dumps: list[Path] = []
    try:
        await backup_and_restore(
            old,
            new,
            lambda: dumps.append(postgres.dump("before_backup", "cloud.dump")),
            lambda: postgres.restore(dumps[0], "restored"),
        )
    finally:
        postgres.drop_database("before_backup")
        postgres.drop_database("restored")


def test_backup_of_postgresql_points_to_pg_dump(tmp_path: Path) -> None:
    cli = CloudProcess(tmp_path, database_url="postgresql://nobody@127.0.0.1:1/none")
    result = cli.cli("backup", str(tmp_path / "x"))
    assert result.returncode == 2
    assert result.stderr == (
        "error: backup copies a SQLite database; for PostgreSQL use pg_dump "
        "(docs/cloud.md, Backup and restore)\n"
    )

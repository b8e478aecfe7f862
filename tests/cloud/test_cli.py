"""The installed ``iotistic-cloud`` entry point, run as a subprocess like an operator does."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from iotistic_cloud.api.app import create_app
from iotistic_cloud.db.engine import Database
from iotistic_cloud.db.migrate import upgrade
from iotistic_cloud.settings import database_url as async_url

from tests.cloud.conftest import SettableClock, make_settings
from tests.cloud.device_kit import create_key, provision, report, target
from tests.support.postgres import PostgresServer

CLOUD = Path(sys.executable).with_name("iotistic-cloud")


class Cli:
    def __init__(self, data_dir: Path, database_url: str | None = None) -> None:
        self.data_dir = data_dir
        self.env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "ADMIN_TOKEN")}
        self.env["CLOUD_DATA_DIR"] = str(data_dir)
        if database_url is not None:
            self.env["DATABASE_URL"] = database_url

    def __call__(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(CLOUD), *args],
            env=self.env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    def ok(self, *args: str, stdin: str | None = None) -> str:
        result = self(*args, stdin=stdin)
        assert result.returncode == 0, result.stderr
        return result.stdout

    def ok_together(self, *commands: tuple[str, ...]) -> list[str]:
        """Independent read-only commands, run side by side (each its own process)."""
        with ThreadPoolExecutor(max_workers=len(commands)) as pool:
            return list(pool.map(lambda args: self.ok(*args), commands))

    def fails(self, code: int, *args: str, stdin: str | None = None) -> str:
        result = self(*args, stdin=stdin)
        assert result.returncode == code, (result.stdout, result.stderr)
        assert result.stdout == ""
        assert result.stderr.startswith("error: ")
        assert "Traceback" not in result.stderr
        return result.stderr


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    """The default set-up: SQLite in CLOUD_DATA_DIR."""
    return Cli(tmp_path / "cloud")


def test_keys_create_list_revoke(cli: Cli) -> None:
    quiet = cli.ok("keys", "create", "--quiet")
    assert quiet.count("\n") == 1
    assert quiet.strip().startswith("ipk_") and len(quiet.strip()) == 4 + 43

    created = json.loads(
        cli.ok(
            "keys", "create", "--fleet", "lab", "--max-devices", "2", "--expires-in", "1h", "--json"
        )
    )
    assert (created["id"], created["fleet"], created["maxDevices"]) == (2, "lab", 2)

    assert cli.ok("keys", "revoke", "1") == "revoked key 1\n"
    listed_json, listed_table = cli.ok_together(("keys", "list", "--json"), ("keys", "list"))
    assert [(k["id"], k["fleet"], k["status"]) for k in json.loads(listed_json)] == [
        (1, "default", "revoked"),
        (2, "lab", "active"),
    ]
    assert quiet.strip() not in listed_json and created["key"] not in listed_json
    table = listed_table.splitlines()
    assert table[0].split() == ["ID", "FLEET", "PREFIX", "STATUS", "DEVICES", "EXPIRES"]
    assert table[1].split()[:5] == ["1", "default", f"{quiet[:8]}...", "revoked", "0/unlimited"]
    assert (cli.data_dir / "cloud.sqlite").exists()


def test_errors_are_one_line_on_stderr(cli: Cli, tmp_path: Path) -> None:
    cli.ok("keys", "list")  # creates and migrates the database once, before the parallel runs
    bad_target = tmp_path / "target.json"
    bad_target.write_text('{"apps": {"1": {"appId": 2, "appName": "x"}}}')
    uuid = "9b0c5b1e-8f0e-4f7e-9d6f-3f1c2a4b5c6d"
    cases: list[tuple[int, tuple[str, ...], str]] = [
        (1, ("keys", "revoke", "99"), "error: provisioning key 99 does not exist\n"),
        (2, ("devices", "show", "not-a-uuid"), "uuid: must be a UUID"),
        (2, ("keys", "create", "--expires-in", "5x"), "--expires-in: invalid duration"),
        (2, ("devices", "set-target", uuid, str(bad_target)), "apps.1: key '1' must equal"),
        (2, ("devices", "set-target", uuid, str(tmp_path / "nope")), "cannot read"),
        (1, ("devices", "delete", uuid), f"error: device {uuid} does not exist\n"),
    ]
    # Independent commands: run side by side, each a process of its own.
    with ThreadPoolExecutor(max_workers=len(cases)) as pool:
        errors = list(pool.map(lambda case: cli.fails(case[0], *case[1]), cases))
    for (_, _, expected), error in zip(cases, errors, strict=True):
        assert expected in error


def test_unreachable_database_hides_the_password(tmp_path: Path) -> None:
    port = 1  # nothing listens there
    cli = Cli(tmp_path, f"postgresql://admin:p4ssw0rd@127.0.0.1:{port}/cloud")
    error = cli.fails(1, "devices", "list")
    assert "p4ssw0rd" not in error
    assert "admin:***@127.0.0.1" in error


def test_admin_token_is_generated_once(cli: Cli) -> None:
    token = cli.ok("admin-token").strip()
    token_file = cli.data_dir / "admin.token"
    assert len(token) >= 40
    assert token_file.read_text().strip() == token
    assert token_file.stat().st_mode & 0o777 == 0o600


@pytest.fixture
def pg_url(postgres: PostgresServer) -> Iterator[str]:
    yield postgres.create_database("cli_devices")
    postgres.drop_database("cli_devices")


ANOMALIES = {
    "total": 1,
    "recent": [
        {"timestamp": 1_795_000_000_000, "source": "system", "metric": "cpu_temp", "value": 81.5,
         "method": "z_score", "severity": "critical", "confidence": 0.99, "quality": "GOOD"}
    ],
}  # fmt: skip


async def test_devices_commands_on_postgresql(pg_url: str, tmp_path: Path) -> None:
    """A device provisioned through the API, then managed with the CLI on the same database."""
    database = Database(async_url(pg_url))
    await upgrade(database.engine)
    app = create_app(
        make_settings(tmp_path, database.url), database=database, clock=SettableClock()
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://cloud.test") as client:
        device = await provision(client, await create_key(client), name="cli-device")
        await client.patch(
            "/api/v1/device/state",
            json=report(device.uuid, 1, full=True, cpu_usage=12, anomalies=ANOMALIES),
            headers=device.auth,
        )
    await database.dispose()
    cli = Cli(tmp_path, pg_url)

    listed = json.loads(cli.ok("devices", "list", "--json"))
    assert [(d["uuid"], d["name"], d["targetVersion"]) for d in listed] == [
        (device.uuid, "cli-device", 0)
    ]
    desired = target((1001, "web", "nginx:1.25"))
    target_file = tmp_path / "target.json"
    target_file.write_text(json.dumps(desired))
    assert cli.ok("devices", "set-target", device.uuid, str(target_file)) == "1\n"
    same = cli(*("devices", "set-target", device.uuid, "-"), stdin=json.dumps(desired))
    assert (same.returncode, same.stdout, same.stderr) == (0, "1\n", "target unchanged\n")
    # --if-match: saved only over the version (or ETag) it names, never over another change.
    newer = target((1001, "web", "nginx:1.27"))
    target_file.write_text(json.dumps(newer))
    stale = cli("devices", "set-target", device.uuid, str(target_file), "--if-match", "0")
    assert (stale.returncode, stale.stdout) == (1, "")
    assert stale.stderr.startswith(f"error: the target of device {device.uuid} is at version 1")
    saved = cli.ok("devices", "set-target", device.uuid, str(target_file), "--if-match", "1")
    assert saved == "2\n"
    target_file.write_text(json.dumps(desired))
    assert cli.ok("devices", "set-target", device.uuid, str(target_file)) == "3\n"

    shown_json, human, reports_json, anomalies_json = cli.ok_together(
        ("devices", "show", device.uuid, "--json"),
        ("devices", "show", device.uuid),
        ("devices", "reports", device.uuid, "--json", "--limit", "5"),
        ("devices", "anomalies", device.uuid, "--json"),
    )
    assert json.loads(anomalies_json) == ANOMALIES["recent"]
    shown = json.loads(shown_json)
    assert shown["target"] == desired
    assert shown["targetVersion"] == 3
    assert shown["targetEtag"].startswith('"3-')
    assert shown["reportedState"]["cpu_usage"] == 12.0
    assert device.api_key not in shown_json
    assert "uuid:" in human and "nginx:1.25" in human
    assert re.search(rf"target etag: +{shown['targetEtag']}\n", human), human
    reports = json.loads(reports_json)
    assert [(r["sequence"], r["full"]) for r in reports] == [(1, True)]

    assert cli.ok("devices", "delete", device.uuid) == f"deleted {device.uuid}\n"
    assert json.loads(cli.ok("devices", "list", "--json")) == []

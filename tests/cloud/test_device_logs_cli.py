"""``iotistic-cloud logs``, run as a subprocess against the database the API writes to."""

from __future__ import annotations

import asyncio
import json
import signal
from pathlib import Path

import httpx
from iotistic_cloud.db.engine import Database

from tests.cloud.device_kit import provision
from tests.cloud.log_kit import container, record, upload
from tests.cloud.test_cli import CLOUD, Cli
from tests.cloud.test_device_logs_query import FLEET_LOG
from tests.integration.waiting import wait_for_async


def seqs(ndjson: str) -> list[int]:
    return [json.loads(line)["seq"] for line in ndjson.splitlines()]


async def test_logs_command(
    client: httpx.AsyncClient, key: str, db: Database, tmp_path: Path
) -> None:
    device = await provision(client, key)
    assert (await upload(client, device, FLEET_LOG)).status_code == 202
    cli = Cli(tmp_path, db.url)
    everything, human, web_warn, tail, grep, since = cli.ok_together(
        ("logs", device.uuid, "--json"),
        ("logs", device.uuid),
        ("logs", device.uuid, "--service", "web", "--level", "warn", "--json"),
        ("logs", device.uuid, "-n", "2", "--json"),
        ("logs", device.uuid, "--grep", "GET /", "--source", "container", "--json"),
        ("logs", device.uuid, "--since", "2026-11-25T12:00:05Z", "--app", "shop", "--json"),
    )
    assert seqs(everything) == [1, 2, 3, 4, 5, 6]
    assert json.loads(everything.splitlines()[1])["service"] == "web"
    assert human.splitlines()[0] == "2026-11-25T12:00:01.000000123Z DEBUG agent Agent starting"
    assert human.splitlines()[2] == (
        "2026-11-25T12:00:03.000000123Z WARN  shop/web (stderr) upstream timed out"
    )
    assert "ERROR cloudSync cloud sync failed" in human.splitlines()[4]
    assert seqs(web_warn) == [3]
    assert seqs(tail) == [5, 6]
    assert seqs(grep) == [2, 6]
    assert seqs(since) == [6]


async def test_logs_errors(
    client: httpx.AsyncClient, key: str, db: Database, tmp_path: Path
) -> None:
    device = await provision(client, key)
    cli = Cli(tmp_path, db.url)
    unknown = "9b0c5b1e-8f0e-4f7e-9d6f-3f1c2a4b5c6d"
    errors = [
        (1, ("logs", unknown), f"error: device {unknown} does not exist\n"),
        (2, ("logs", "not-a-uuid"), "device: must be a UUID"),
        (2, ("logs", device.uuid, "--level", "fatal"), "level: must be one of"),
        (2, ("logs", device.uuid, "--since", "last week"), "since: must be an RFC 3339 time"),
        (2, ("logs", device.uuid, "-n", "0"), "limit: must be between 1 and 10000"),
        (2, ("logs", device.uuid, "--since", "999999999d"), "since: a duration must be at most"),
        (2, ("logs", device.uuid, "--since", "0001-01-01T00:00:00+01:00"), "since: is out of"),
        (2, ("logs", device.uuid, "--until", "9999-12-31T23:59:59-01:00"), "until: is out of"),
    ]
    for code, args, expected in errors:
        assert expected in cli.fails(code, *args)


async def test_human_output_escapes_control_characters(
    client: httpx.AsyncClient, key: str, db: Database, tmp_path: Path
) -> None:
    device = await provision(client, key)
    fake = "\n2026-11-25T12:00:09.000000123Z ERROR agent forged"
    message = "\x1b[2J\x1b]0;owned\x07red\rover" + fake + "\ttab \x9b1m \x7f end"
    records = [
        container(1, "web\x1b[31m", message, app="a\rb"),
        record(2, "plain", component="mqtt\n"),
    ]
    assert (await upload(client, device, records)).status_code == 202
    human, as_json = Cli(tmp_path, db.url).ok_together(
        ("logs", device.uuid), ("logs", device.uuid, "--json")
    )
    assert human.splitlines() == [
        "2026-11-25T12:00:01.000000123Z INFO  a\\rb/web\\x1b[31m (stdout) "
        "\\x1b[2J\\x1b]0;owned\\x07red\\rover\\n2026-11-25T12:00:09.000000123Z ERROR agent"
        " forged\ttab \\x9b1m \\x7f end",
        "2026-11-25T12:00:02.000000123Z INFO  mqtt\\n plain",
    ]
    # --json is the records as they are (JSON escapes its own control characters).
    assert [json.loads(line)["message"] for line in as_json.splitlines()] == [message, "plain"]


async def test_logs_follow(
    client: httpx.AsyncClient, key: str, db: Database, tmp_path: Path
) -> None:
    device = await provision(client, key)
    await upload(client, device, FLEET_LOG[:2])
    cli = Cli(tmp_path, db.url)
    proc = await asyncio.create_subprocess_exec(
        str(CLOUD), "logs", device.uuid, "-f", "--json", "--level", "info",
        env=cli.env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    lines: list[str] = []

    async def read() -> None:
        assert proc.stdout is not None
        async for line in proc.stdout:
            lines.append(line.decode())

    reader = asyncio.create_task(read())
    try:
        await wait_for_async(lambda: seqs("".join(lines)) == [2], 30)
        await upload(client, device, [*FLEET_LOG[2:4], record(7, level="debug")])
        await wait_for_async(lambda: seqs("".join(lines)) == [2, 3, 4], 30)
        await upload(client, device, [container(8, "web", "still here")])
        await wait_for_async(lambda: seqs("".join(lines)) == [2, 3, 4, 8], 30)
    finally:
        proc.send_signal(signal.SIGINT)
        code = await asyncio.wait_for(proc.wait(), 30)
        await asyncio.wait_for(reader, 10)
    assert proc.stderr is not None
    stderr = (await proc.stderr.read()).decode()
    assert code == 0, stderr
    assert "Traceback" not in stderr

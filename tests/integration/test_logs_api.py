"""Container logs from the real Docker engine: `DockerEngine.container_logs` and the Device
API route on top of it.

The expected output is what the container's shell script prints; `docker logs` (the CLI)
is the independent check of the timestamps. Across stdout and stderr the daemon's order is
not the order of writing (two copier tasks stamp the lines), so order is checked per stream.
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from iotistic_agent.device_api import log_routes
from iotistic_agent.device_api.errors import json_errors
from iotistic_agent.device_api.shared import attach
from iotistic_agent.engine.docker import DockerEngine
from iotistic_agent.engine.protocol import (
    ContainerLogLine,
    ContainerNotFound,
    EngineUnavailable,
)
from iotistic_contracts import parse_target_state

from tests.integration.dockerkit import MANAGED_LABEL, ImageSet, docker
from tests.integration.waiting import wait_for, wait_for_async
from tests.unit.api_support import api_context

RFC3339_NANO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z")
LONG = "|".join(str(i) for i in range(1, 20001))  # `seq -s '|' 1 20000`: ~106 KB, no repeats
LONG_CMD = "seq -s '|' 1 20000"
WAIT_FOR_GO = "while [ ! -f /tmp/go ]; do sleep 0.1; done"
STEP_S = 30.0  # generous bound on any single wait for the engine


@pytest.fixture
async def engine(docker_clean: None, images: ImageSet) -> AsyncIterator[DockerEngine]:
    docker("pull", images.v1, timeout=120)
    async with DockerEngine(device_uuid="logs-test-device") as eng:
        yield eng


def run(image: str, script: str, *flags: str) -> str:
    name = f"iotistic-logtest-{uuid.uuid4().hex[:8]}"
    args = ["run", "-d", "--label", MANAGED_LABEL, "--name", name, *flags, image]
    return docker(*args, "sh", "-c", script).stdout.strip()


def inspect(container: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(docker("inspect", container).stdout)[0]
    return data


def wait_exited(container: str) -> dict[str, Any]:
    return wait_for(
        lambda: (info := inspect(container))["State"]["Status"] == "exited" and info,
        STEP_S,
        message=f"container {container[:12]} did not exit",
    )


async def read_all(engine: DockerEngine, container: str, **options: Any) -> list[ContainerLogLine]:
    options = {"tail": 10_000, "follow": False, **options}
    return [line async for line in engine.container_logs(container, **options)]


def by_stream(lines: list[ContainerLogLine], stream: str) -> list[str]:
    return [line.message for line in lines if line.stream == stream]


def when(timestamp: str) -> datetime:
    return datetime.fromisoformat(timestamp)  # 3.11 keeps microseconds of the 9 digits


async def test_lines_come_in_order_per_stream_with_timestamps_long_and_unended_lines(
    engine: DockerEngine, images: ImageSet
) -> None:
    script = (
        "echo out1; echo err1 >&2; "
        f"{LONG_CMD}; "  # a 100 KB line: the daemon stores it as 16 KiB pieces
        "echo out2; echo err2 >&2; printf 'ünïcödé ✓\\n'; "
        f"{LONG_CMD} | tr -d '\\n' >&2; "  # 100 KB on stderr, never ended
        "printf 'no newline'"
    )
    container = run(images.v1, script)
    info = wait_exited(container)
    lines = await read_all(engine, container)

    assert by_stream(lines, "stdout") == ["out1", LONG, "out2", "ünïcödé ✓", "no newline"]
    assert by_stream(lines, "stderr") == ["err1", "err2", LONG]
    started = when(info["State"]["StartedAt"]) - timedelta(seconds=1)
    finished = when(info["State"]["FinishedAt"]) + timedelta(seconds=1)
    for line in lines:
        assert RFC3339_NANO.fullmatch(line.timestamp), line.timestamp
        assert started <= when(line.timestamp) <= finished
    cli = docker("logs", "--timestamps", container)
    for stream, printed in (("stdout", cli.stdout), ("stderr", cli.stderr)):
        # The CLI prints every piece's own timestamp; a line's is the first piece's.
        cli_stamps = [row.split(" ", 1)[0] for row in printed.splitlines()]
        ours = [line.timestamp for line in lines if line.stream == stream]
        assert ours == cli_stamps
        assert ours == sorted(ours)


async def test_tail_counts_the_engines_entries(engine: DockerEngine, images: ImageSet) -> None:
    container = run(images.v1, f"{LONG_CMD}; for i in $(seq 1 10); do echo line$i; done")
    wait_exited(container)
    got = await read_all(engine, container, tail=3)
    assert [x.message for x in got] == ["line8", "line9", "line10"]
    assert await read_all(engine, container, tail=0) == []
    everything = [x.message for x in await read_all(engine, container, tail=20)]
    assert everything == [LONG] + [f"line{i}" for i in range(1, 11)]
    # Found: the engine's tail counts its log entries, and it keeps a line over 16 KiB as
    # several 16 KiB entries: a tail that starts inside a long line gets only its end.
    got = await read_all(engine, container, tail=12)
    assert len(got) == 11 and got[0].message == LONG[-len(got[0].message) :]
    assert 0 < len(got[0].message) < len(LONG)


async def test_follow_yields_a_line_printed_later_and_ends_when_the_container_stops(
    engine: DockerEngine, images: ImageSet
) -> None:
    script = f"echo early; {WAIT_FOR_GO}; echo later; printf unended; {LONG_CMD} | tr -d '\\n' >&2"
    container = run(images.v1, script)
    lines = engine.container_logs(container, tail=10, follow=True)
    async with asyncio.timeout(STEP_S):
        assert (await anext(lines)).message == "early"
    docker("exec", container, "touch", "/tmp/go")
    async with asyncio.timeout(STEP_S):
        later = await anext(lines)
        assert (later.stream, later.message) == ("stdout", "later")
        assert RFC3339_NANO.fullmatch(later.timestamp)
        # The container exits: the stream ends by itself. Found: Docker ends a followed
        # stream before the text never ended with a newline; the engine reads it after.
        rest = [x async for x in lines]
    assert by_stream(rest, "stdout") == ["unended"]
    assert by_stream(rest, "stderr") == [LONG]


async def test_follow_closed_early_leaves_the_engine_usable(
    engine: DockerEngine, images: ImageSet
) -> None:
    container = run(images.v1, f"echo first; {WAIT_FOR_GO}")
    lines = engine.container_logs(container, tail=1, follow=True)
    async with asyncio.timeout(STEP_S):
        assert (await anext(lines)).message == "first"
        await lines.aclose()
        assert await engine.ping()
        assert [x.message for x in await read_all(engine, container)] == ["first"]


async def test_a_tty_container_has_only_stdout_and_no_carriage_returns(
    engine: DockerEngine, images: ImageSet
) -> None:
    container = run(images.v1, f"echo out; echo err >&2; {LONG_CMD}; printf end", "-t")
    wait_exited(container)
    lines = await read_all(engine, container)
    assert [(x.stream, x.message) for x in lines] == [
        ("stdout", "out"),
        ("stdout", "err"),
        ("stdout", LONG),
        ("stdout", "end"),
    ]


async def test_unknown_container_and_unreachable_engine(
    engine: DockerEngine, tmp_path: Path
) -> None:
    with pytest.raises(ContainerNotFound):
        await read_all(engine, "no-such-container-" + uuid.uuid4().hex)
    async with DockerEngine(
        f"unix://{tmp_path}/no-docker.sock", device_uuid="logs-test-device"
    ) as dead:
        with pytest.raises(EngineUnavailable):
            await read_all(dead, "anything")


# --- through the Device API route ---------------------------------------------------------


class CountingEngine(DockerEngine):
    """The real engine, counting log streams opened and closed."""

    opened = 0
    closed = 0

    async def container_logs(
        self, container_id: str, *, tail: int | None, follow: bool, since: float | None = None
    ) -> AsyncIterator[ContainerLogLine]:
        self.opened += 1
        try:
            async for line in super().container_logs(
                container_id, tail=tail, follow=follow, since=since
            ):
                yield line
        finally:
            self.closed += 1


async def test_the_route_follows_a_service_container_until_the_client_leaves(
    docker_clean: None, images: ImageSet, tmp_path: Path
) -> None:
    script = f"echo one; echo two >&2; {WAIT_FOR_GO}; echo three; exec sleep 3600"
    service = {
        "serviceId": 1,
        "serviceName": "web",
        "imageName": images.v1,
        "config": {"command": ["sh", "-c", script]},
    }
    target = {"apps": {"1001": {"appId": 1001, "appName": "demo", "services": [service]}}}
    async with CountingEngine(device_uuid="logs-test-device") as engine:
        ctx = api_context(tmp_path, engine)  # type: ignore[arg-type]
        ctx.targets.save(parse_target_state(json.dumps(target)), source="local")
        assert (await ctx.reconciler.reconcile()).settled
        app = web.Application(middlewares=[json_errors])
        attach(app, ctx)
        app.add_routes(log_routes.routes)
        async with TestClient(TestServer(app)) as client:
            resp = await client.get("/v1/services/web/logs?follow=true&tail=100")
            assert resp.status == 200, await resp.text()
            assert resp.headers["Content-Type"].startswith("application/x-ndjson")
            async with asyncio.timeout(STEP_S):
                first = [json.loads(await resp.content.readline()) for _ in range(2)]
            assert {(x["stream"], x["message"]) for x in first} == {
                ("stdout", "one"),
                ("stderr", "two"),
            }
            assert all(RFC3339_NANO.fullmatch(x["timestamp"]) for x in first)
            (container,) = [c.id for c in (await engine.snapshot()).containers]
            docker("exec", container, "touch", "/tmp/go")
            async with asyncio.timeout(STEP_S):
                third = json.loads(await resp.content.readline())
            assert (third["stream"], third["message"]) == ("stdout", "three")
            resp.close()
            await wait_for_async(
                lambda: engine.closed == engine.opened == 1,
                STEP_S,
                message="the engine's log stream was not closed after the client left",
            )
            plain = await client.get("/v1/services/web/logs?tail=1")
            assert [json.loads(x)["message"] for x in (await plain.text()).splitlines()] == [
                "three"
            ]

"""GET /v1/services/{ref}/logs and GET /v1/logs: NDJSON, query validation, following, and
clients that go away, over the in-memory engine."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from api_support import api_context
from iotistic_agent.device_api import log_routes
from iotistic_agent.device_api.context import ApiContext
from iotistic_agent.device_api.errors import json_errors
from iotistic_agent.device_api.shared import attach
from iotistic_agent.engine.memory import MemoryEngine
from iotistic_agent.engine.protocol import (
    ContainerLogLine,
    ContainerNotFound,
    EngineError,
    EngineUnavailable,
)
from iotistic_agent.logs.ring import LogRing
from iotistic_agent.orchestrator.model import EngineSnapshot
from iotistic_contracts import parse_target_state

from tests.integration.waiting import wait_for_async

IMAGE = "reg/img:v1"
Client = TestClient[Any, Any]
LINES = [
    ContainerLogLine(f"2026-01-02T03:04:0{i}.000000000Z", "stderr" if i % 2 else "stdout", f"m{i}")
    for i in range(5)
]
END = object()  # a live item: the container stopped


@dataclass
class LiveEngine(MemoryEngine):
    """MemoryEngine whose followed logs go on with what the test puts in `live`."""

    live: asyncio.Queue[Any] = field(default_factory=asyncio.Queue)
    fail_at_once: EngineError | None = None
    down: bool = False
    opened: int = 0
    closed: int = 0

    async def ping(self) -> bool:
        return not self.down

    async def snapshot(self) -> EngineSnapshot:
        if self.down:
            raise EngineUnavailable("cannot connect to the engine")
        return await super().snapshot()

    async def container_logs(
        self, container_id: str, *, tail: int | None, follow: bool, since: float | None = None
    ) -> AsyncIterator[ContainerLogLine]:
        if self.fail_at_once is not None:
            raise self.fail_at_once
        self.opened += 1
        try:
            async for line in super().container_logs(
                container_id, tail=tail, follow=follow, since=since
            ):
                yield line
            while follow:
                item = await self.live.get()
                if item is END:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            self.closed += 1


def target() -> dict[str, Any]:
    def svc(sid: int, name: str, image: str) -> dict[str, Any]:
        return {"serviceId": sid, "serviceName": name, "imageName": image, "config": {}}

    services = [svc(1, "web", IMAGE), svc(2, "ghost", "reg/missing:v1")]
    return {"apps": {"1001": {"appId": 1001, "appName": "demo", "services": services}}}


def logs_app(ctx: ApiContext) -> web.Application:
    # What create_app will do once the routes are registered there (plus the API key).
    app = web.Application(middlewares=[json_errors])
    # No shared snapshot: the tests switch the engine off and expect the next answer to say so.
    attach(app, ctx, snapshot_max_age_s=0)
    app.add_routes(log_routes.routes)
    return app


@dataclass
class Api:
    ctx: ApiContext
    engine: LiveEngine
    ring: LogRing
    logger: logging.Logger
    web_id: str


@pytest.fixture
def ring() -> Iterator[tuple[LogRing, logging.Logger]]:
    ring = LogRing(capacity=50)
    logger = logging.getLogger("iotistic.logtest")
    logger.setLevel(logging.DEBUG)
    logger.addHandler(ring)
    yield ring, logger
    logger.removeHandler(ring)


@pytest.fixture
async def api(tmp_path: Path, ring: tuple[LogRing, logging.Logger]) -> Api:
    engine = LiveEngine(registry={IMAGE})
    ctx = replace(api_context(tmp_path, engine), log_ring=ring[0])
    ctx.targets.save(parse_target_state(json.dumps(target())), source="local")
    await ctx.reconciler.reconcile()
    (web_id,) = [c.id for c in engine.containers.values() if c.service_name == "web"]
    engine.logs[web_id] = list(LINES)
    return Api(ctx, engine, ring[0], ring[1], web_id)


@pytest.fixture
async def client(api: Api) -> AsyncIterator[Client]:
    async with TestClient(TestServer(logs_app(api.ctx))) as c:
        yield c


def ndjson(text: str) -> list[dict[str, Any]]:
    assert text == "" or text.endswith("\n")
    return [json.loads(x) for x in text.splitlines()]


def as_json(line: ContainerLogLine) -> dict[str, Any]:
    return {"timestamp": line.timestamp, "stream": line.stream, "message": line.message}


async def next_line(resp: aiohttp.ClientResponse) -> dict[str, Any]:
    async with asyncio.timeout(5):
        raw = await resp.content.readline()
    assert raw.endswith(b"\n"), raw
    result: dict[str, Any] = json.loads(raw)
    return result


# --- service logs -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "expected"),
    [("", LINES), ("?tail=2", LINES[-2:]), ("?tail=0", []), ("?tail=10000&follow=0", LINES)],
)
async def test_service_logs_are_ndjson_of_the_last_lines(
    client: Client, query: str, expected: list[ContainerLogLine]
) -> None:
    resp = await client.get(f"/v1/services/web/logs{query}")
    assert resp.status == 200
    assert resp.headers["Content-Type"].startswith("application/x-ndjson")
    assert ndjson(await resp.text()) == [as_json(x) for x in expected]


@pytest.mark.parametrize("ref", ["web", "web-1", "1001%2Fweb", "1001_web_1"])
async def test_every_kind_of_reference_finds_the_service(
    api: Api, client: Client, ref: str
) -> None:
    name = api.engine.containers[api.web_id].name
    ref = name if ref == "1001_web_1" else ref
    resp = await client.get(f"/v1/services/{ref}/logs?tail=1")
    assert resp.status == 200, await resp.text()
    assert ndjson(await resp.text()) == [as_json(LINES[-1])]


@pytest.mark.parametrize(
    ("query", "needle"),
    [
        ("tail=-1", "tail must be an integer from 0 to 10000, got '-1'"),
        ("tail=10001", "tail must be an integer from 0 to 10000"),
        ("tail=abc", "tail must be an integer"),
        ("tail=", "tail must be an integer"),
        ("tail=1.5", "tail must be an integer"),
        ("tail=%201", "tail must be an integer"),
        ("follow=yes", "follow must be true, false, 1 or 0, got 'yes'"),
        ("follow=2", "follow must be true, false, 1 or 0"),
        ("follow=", "follow must be true, false, 1 or 0"),
    ],
)
async def test_bad_service_log_queries_get_400(client: Client, query: str, needle: str) -> None:
    resp = await client.get(f"/v1/services/web/logs?{query}")
    assert resp.status == 400
    body = await resp.json()
    assert body["error"] == "bad_request" and needle in body["message"]


@pytest.mark.parametrize(
    ("query", "needle"),
    [
        ("n=-5", "n must be an integer from 0 to 10000"),
        ("n=99999", "n must be"),
        ("follow=no", "follow"),
    ],
)
async def test_bad_agent_log_queries_get_400(client: Client, query: str, needle: str) -> None:
    resp = await client.get(f"/v1/logs?{query}")
    assert resp.status == 400
    body = await resp.json()
    assert body["error"] == "bad_request" and needle in body["message"]


async def test_unknown_service_and_service_without_container_are_404(client: Client) -> None:
    resp = await client.get("/v1/services/nope/logs")
    assert resp.status == 404 and (await resp.json())["error"] == "not_found"
    resp = await client.get("/v1/services/ghost/logs")
    assert resp.status == 404
    body = await resp.json()
    assert body["error"] == "not_found"
    assert body["message"].startswith("service 1001/ghost has no container")


@pytest.mark.parametrize(
    ("error", "status", "code"),
    [
        (ContainerNotFound("no such container"), 404, "not_found"),
        (EngineUnavailable("socket missing"), 503, "engine_unavailable"),
        (EngineError("configured logging driver does not support reading"), 502, "engine_error"),
    ],
)
async def test_engine_errors_before_the_first_line_are_http_errors(
    api: Api, client: Client, error: EngineError, status: int, code: str
) -> None:
    api.engine.fail_at_once = error
    for follow in ("false", "true"):
        resp = await client.get(f"/v1/services/web/logs?follow={follow}")
        assert resp.status == status
        body = await resp.json()
        assert body["error"] == code and str(error) in body["message"]


async def test_an_unreachable_engine_is_503(api: Api, client: Client) -> None:
    api.engine.down = True
    resp = await client.get("/v1/services/web/logs")
    assert resp.status == 503
    assert (await resp.json())["error"] == "engine_unavailable"


async def test_follow_streams_new_lines_until_the_container_stops(api: Api, client: Client) -> None:
    resp = await client.get("/v1/services/web/logs?tail=1&follow=true")
    assert resp.status == 200
    assert resp.headers["Content-Type"].startswith("application/x-ndjson")
    assert await next_line(resp) == as_json(LINES[-1])
    later = ContainerLogLine("2026-01-02T03:05:00.000000000Z", "stderr", "later")
    await api.engine.live.put(later)
    assert await next_line(resp) == as_json(later)
    await api.engine.live.put(END)
    async with asyncio.timeout(5):
        assert await resp.content.read() == b""
    assert api.engine.closed == api.engine.opened == 1


async def test_follow_of_a_quiet_container_sends_headers_without_a_line(
    api: Api, client: Client
) -> None:
    async with asyncio.timeout(5):
        resp = await client.get("/v1/services/web/logs?tail=0&follow=1")
    assert resp.status == 200
    await api.engine.live.put(LINES[0])
    assert await next_line(resp) == as_json(LINES[0])
    resp.close()


async def test_an_engine_error_mid_stream_ends_the_stream_with_a_warning(
    api: Api, client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    resp = await client.get("/v1/services/web/logs?tail=1&follow=true")
    assert await next_line(resp) == as_json(LINES[-1])
    await api.engine.live.put(EngineUnavailable("connection to the engine lost"))
    async with asyncio.timeout(5):
        assert await resp.content.read() == b""
    warnings = [r for r in caplog.records if r.name == "iotistic.device_api.logs"]
    assert [r.levelname for r in warnings] == ["WARNING"]
    assert "logs of 1001/web" in warnings[0].getMessage()
    assert "connection to the engine lost" in warnings[0].getMessage()


async def test_a_client_that_leaves_closes_the_engine_stream_quietly(
    api: Api, client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    resp = await client.get("/v1/services/web/logs?tail=2&follow=true")
    assert await next_line(resp) == as_json(LINES[-2])
    resp.close()
    await wait_for_async(lambda: api.engine.closed == 1, 5, 0.02)
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []


@pytest.fixture
async def agent_like_server(api: Api, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[str]:
    """Served like the agent serves it: aiohttp does not cancel a handler whose client
    left (the test client's server does), so the route has to notice by itself."""
    monkeypatch.setattr(log_routes, "DISCONNECT_POLL_S", 0.05)
    runner = web.AppRunner(logs_app(api.ctx), access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield f"http://127.0.0.1:{port}"
    await runner.cleanup()


async def test_a_client_that_leaves_a_quiet_stream_is_noticed_without_handler_cancellation(
    api: Api, agent_like_server: str, caplog: pytest.LogCaptureFixture
) -> None:
    async with aiohttp.ClientSession() as session:
        resp = await session.get(f"{agent_like_server}/v1/services/web/logs?tail=1&follow=true")
        assert await next_line(resp) == as_json(LINES[-1])
        resp.close()
        await wait_for_async(lambda: api.engine.closed == 1, 5, 0.02)
        resp = await session.get(f"{agent_like_server}/v1/logs?n=1&follow=true")
        assert resp.status == 200
        await wait_for_async(lambda: len(api.ring._followers) == 1, 5, 0.02)
        resp.close()
        await wait_for_async(lambda: len(api.ring._followers) == 0, 5, 0.02)
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []


# --- the agent's own log ----------------------------------------------------------------


def agent_entry(level: str, message: str) -> dict[str, Any]:
    return {"level": level, "component": "logtest", "message": message}


def without_time(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    for entry in entries:
        assert entry.pop("timestamp").endswith("Z")
    return entries


async def test_agent_log_tail(api: Api, client: Client) -> None:
    api.logger.info("one %d", 1)
    api.logger.warning("two")
    api.logger.error("three")
    resp = await client.get("/v1/logs?n=2")
    assert resp.status == 200
    assert resp.headers["Content-Type"].startswith("application/x-ndjson")
    assert without_time(ndjson(await resp.text())) == [
        agent_entry("warn", "two"),
        agent_entry("error", "three"),
    ]
    assert len(ndjson(await (await client.get("/v1/logs")).text())) == 3
    assert await (await client.get("/v1/logs?n=0")).text() == ""


async def test_agent_log_follow_streams_new_entries(api: Api, client: Client) -> None:
    api.logger.info("before")
    resp = await client.get("/v1/logs?n=5&follow=true")
    assert resp.status == 200
    assert without_time([await next_line(resp)]) == [agent_entry("info", "before")]
    api.logger.debug("after")
    assert without_time([await next_line(resp)]) == [agent_entry("debug", "after")]
    resp.close()
    await wait_for_async(lambda: len(api.ring._followers) == 0, 5, 0.02)


async def test_agent_log_without_a_ring_is_503(api: Api) -> None:
    app = logs_app(replace(api.ctx, log_ring=None))
    async with TestClient(TestServer(app)) as c:
        resp = await c.get("/v1/logs")
        assert resp.status == 503
        assert (await resp.json())["error"] == "not_available"

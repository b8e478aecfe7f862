"""Querying device logs through the admin API, and following them over a real HTTP server."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from iotistic_cloud.api import log_routes

from tests.cloud.conftest import SettableClock
from tests.cloud.device_kit import ADMIN, SimDevice, provision
from tests.cloud.log_kit import container, record, upload
from tests.integration.waiting import wait_for_async

FLEET_LOG = [
    record(1, "Agent starting", level="debug"),
    container(2, "web", "GET /index.html 200"),
    container(3, "web", "upstream timed out", level="warn", stream="stderr"),
    container(4, "db", "checkpoint complete", app="store"),
    record(5, "cloud sync failed: 100% of retries used", level="error", component="cloudSync"),
    container(6, "web", "GET /health 200"),
]


def logs_url(device: SimDevice) -> str:
    return f"/api/admin/v1/devices/{device.uuid}/logs"


async def seqs(client: httpx.AsyncClient, device: SimDevice, **params: Any) -> list[int]:
    answer = await client.get(logs_url(device), params=params, headers=ADMIN)
    assert answer.status_code == 200, answer.text
    return [r["seq"] for r in answer.json()["logs"]]


async def test_filters(client: httpx.AsyncClient, key: str) -> None:
    device = await provision(client, key)
    assert (await upload(client, device, FLEET_LOG)).status_code == 202
    assert await seqs(client, device) == [1, 2, 3, 4, 5, 6]
    assert await seqs(client, device, service="web") == [2, 3, 6]
    assert await seqs(client, device, app="store") == [4]
    assert await seqs(client, device, level="warn") == [3, 5]
    assert await seqs(client, device, level="info") == [2, 3, 4, 5, 6]
    assert await seqs(client, device, level="debug") == [1, 2, 3, 4, 5, 6]
    assert await seqs(client, device, source="agent") == [1, 5]
    assert await seqs(client, device, stream="stderr") == [3]
    assert await seqs(client, device, q="get /") == [2, 6]
    assert await seqs(client, device, q="100%") == [5]
    assert await seqs(client, device, q="_") == []
    assert await seqs(client, device, service="web", q="health", level="info") == [6]
    # Timestamps are 12:00:0<seq>.000000123Z.
    assert await seqs(client, device, since="2026-11-25T12:00:03Z") == [3, 4, 5, 6]
    assert await seqs(client, device, until="2026-11-25T12:00:02.000001Z") == [1, 2]
    assert await seqs(
        client, device, since="2026-11-25T13:00:02+01:00", until="2026-11-25T12:00:04.5Z"
    ) == [2, 3, 4]


async def test_relative_times(client: httpx.AsyncClient, key: str, clock: SettableClock) -> None:
    device = await provision(client, key)
    now = clock()

    def at(seq: int, ago: timedelta) -> dict[str, Any]:
        stamp = (now - ago).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        return record(seq, timestamp=stamp)

    await upload(client, device, [at(1, timedelta(hours=3)), at(2, timedelta(minutes=30))])
    await upload(client, device, [at(3, timedelta(minutes=1))])
    assert await seqs(client, device, since="2h") == [2, 3]
    assert await seqs(client, device, since="15m") == [3]
    assert await seqs(client, device, until="10m") == [1, 2]
    assert await seqs(client, device, since="1d", until="45m") == [1]
    # The extremes that are in range work on both databases.
    assert await seqs(client, device, since="3650d") == [1, 2, 3]
    assert await seqs(
        client, device, since="0001-01-01T00:00:00Z", until="9999-12-31T23:59:59.999999Z"
    ) == [1, 2, 3]


async def test_limit_and_after_seq(client: httpx.AsyncClient, key: str) -> None:
    device = await provision(client, key)
    await upload(client, device, [record(n) for n in range(1, 11)])
    assert await seqs(client, device, limit=3) == [8, 9, 10]
    page = (await client.get(logs_url(device), params={"limit": 3}, headers=ADMIN)).json()
    assert page["lastSeq"] == 10
    assert await seqs(client, device, after_seq=0, limit=4) == [1, 2, 3, 4]
    first = await client.get(logs_url(device), params={"after_seq": 2, "limit": 3}, headers=ADMIN)
    assert first.json()["lastSeq"] == 5
    rest = await client.get(logs_url(device), params={"after_seq": 8}, headers=ADMIN)
    assert ([r["seq"] for r in rest.json()["logs"]], rest.json()["lastSeq"]) == ([9, 10], 10)
    # Nothing matches: the cursor still moves past what was looked at.
    none = await client.get(logs_url(device), params={"after_seq": 3, "q": "absent"}, headers=ADMIN)
    assert none.json() == {"logs": [], "lastSeq": 10}


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"level": "fatal"}, "level"),
        ({"source": "kernel"}, "source"),
        ({"stream": "stdin"}, "stream"),
        ({"since": "yesterday"}, "since"),
        ({"until": "2026-11-25T12:00:00"}, "until"),
        ({"since": "2026-11-25T12:00:00Z", "until": "2026-11-24T12:00:00Z"}, "until"),
        ({"limit": 0}, "limit"),
        ({"limit": 10001}, "limit"),
        ({"limit": "many"}, "limit"),
        ({"after_seq": -1}, "after_seq"),
        ({"after_seq": 2**62 + 1}, "after_seq"),
        ({"after_seq": 2**63}, "after_seq"),
        ({"after_seq": 2**64}, "after_seq"),
        ({"since": "999999999d"}, "since"),
        ({"since": "3651d"}, "since"),
        ({"until": "999999999s"}, "until"),
        ({"since": "0001-01-01T00:00:00+01:00"}, "since"),
        ({"until": "9999-12-31T23:59:59-01:00"}, "until"),
        ({"follow": "perhaps"}, "follow"),
    ],
)
async def test_bad_parameters(
    early_client: httpx.AsyncClient, params: dict[str, Any], field: str
) -> None:
    uuid = "9b0c5b1e-8f0e-4f7e-9d6f-3f1c2a4b5c6d"
    answer = await early_client.get(
        f"/api/admin/v1/devices/{uuid}/logs", params=params, headers=ADMIN
    )
    assert answer.status_code == 400, answer.text
    assert [e["field"] for e in answer.json()["errors"]] == [field]


async def test_unknown_device_and_auth(client: httpx.AsyncClient, key: str) -> None:
    device = await provision(client, key)
    unknown = "9b0c5b1e-8f0e-4f7e-9d6f-3f1c2a4b5c6d"
    answer = await client.get(f"/api/admin/v1/devices/{unknown}/logs", headers=ADMIN)
    assert answer.status_code == 404
    followed = await client.get(
        f"/api/admin/v1/devices/{unknown}/logs", params={"follow": "true"}, headers=ADMIN
    )
    assert followed.status_code == 404
    assert (await client.get(logs_url(device), headers=device.auth)).status_code == 401


@pytest.fixture
async def served(app: FastAPI) -> AsyncIterator[str]:
    """The test's app behind a real uvicorn server in this event loop."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, lifespan="off", log_level="warning", timeout_graceful_shutdown=5)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    await wait_for_async(lambda: server.started, 10, interval=0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
        sock.close()


async def test_follow_streams_new_records(
    served: str, key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(log_routes, "HEARTBEAT_S", 0.2)
    async with httpx.AsyncClient(base_url=served, timeout=10) as client:
        device = await provision(client, key)
        await upload(client, device, FLEET_LOG[:3])
        lines: list[str] = []

        async def read() -> None:
            params = {"follow": "true", "service": "web", "limit": 1}
            async with client.stream("GET", logs_url(device), params=params, headers=ADMIN) as s:
                assert s.status_code == 200
                assert s.headers["content-type"].startswith("application/x-ndjson")
                async for line in s.aiter_lines():
                    lines.append(line)

        reader = asyncio.create_task(read())

        def records() -> list[int]:
            return [json.loads(line)["seq"] for line in lines if line]

        try:
            # The tail first (limit 1 of the matching 2, 3), then heartbeats while idle.
            await wait_for_async(lambda: records() == [3], 10)
            await wait_for_async(lambda: "" in lines, 10)
            await upload(client, device, FLEET_LOG[3:])
            await wait_for_async(lambda: records() == [3, 6], 10)
            await upload(client, device, [container(7, "web", "late"), record(8)])
            await wait_for_async(lambda: records() == [3, 6, 7], 10)
            assert json.loads([line for line in lines if line][-1])["message"] == "late"
        finally:
            reader.cancel()
            with pytest.raises(asyncio.CancelledError):
                await reader


async def test_follow_a_non_finite_context(served: str, key: str) -> None:
    async with httpx.AsyncClient(base_url=served, timeout=10) as client:
        device = await provision(client, key)
        line = (
            b'{"seq": 1, "timestamp": "2026-11-25T12:00:01Z", "level": "info",'
            b' "source": "agent", "message": "m", "context": {"a": NaN, "b": [1e400]}}\n'
        )
        sent = await client.post(
            f"/api/v1/device/{device.uuid}/logs", content=line, headers=device.auth
        )
        assert sent.status_code == 202, sent.text
        params = {"follow": "true"}
        async with client.stream("GET", logs_url(device), params=params, headers=ADMIN) as s:
            assert s.status_code == 200
            first = await anext(s.aiter_lines())

    def strict(constant: str) -> None:
        raise AssertionError(f"streamed {constant}")

    assert json.loads(first, parse_constant=strict)["context"] == {"a": None, "b": [None]}

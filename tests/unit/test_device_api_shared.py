"""What Device API requests share: `Recent` values (single flight, bounded age, renewed ahead)
and the engine view routes read snapshots from (issue 12, item 8)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from api_support import KEY, FakeClock, api_context
from iotistic_agent.device_api.app import create_app
from iotistic_agent.device_api.engine_view import EngineView
from iotistic_agent.device_api.recent import Recent
from iotistic_agent.engine.memory import MemoryEngine
from iotistic_agent.engine.protocol import EngineUnavailable
from iotistic_agent.orchestrator.model import EngineSnapshot

from tests.integration.waiting import wait_for_async


class Source:
    """Values 1, 2, 3... one per fetch; a fetch waits for `release` when it is given."""

    def __init__(self) -> None:
        self.fetches = 0
        self.release: asyncio.Event | None = None
        self.fail: Exception | None = None

    async def __call__(self) -> int:
        self.fetches += 1
        if self.release is not None:
            await self.release.wait()
        if self.fail is not None:
            raise self.fail
        return self.fetches


async def test_concurrent_callers_share_one_fetch() -> None:
    source, clock = Source(), FakeClock()
    source.release = asyncio.Event()
    recent = Recent(source, 1.0, clock=clock)
    waiting = [asyncio.create_task(recent.get()) for _ in range(50)]
    await asyncio.sleep(0)
    source.release.set()
    assert await asyncio.gather(*waiting) == [1] * 50
    assert source.fetches == 1


async def test_a_value_is_reused_until_it_is_too_old() -> None:
    source, clock = Source(), FakeClock()
    recent = Recent(source, 1.0, refresh_after_s=1.0, clock=clock)
    assert await recent.get() == 1
    clock.now += 1.0
    assert await recent.get() == 1  # exactly max_age old: still served
    clock.now += 0.001
    assert await recent.get() == 2  # older: the caller waits for a new one
    assert source.fetches == 2


async def test_past_refresh_after_the_old_value_is_served_while_a_new_one_comes() -> None:
    source, clock = Source(), FakeClock()
    recent = Recent(source, 2.0, refresh_after_s=0.5, clock=clock)
    assert await recent.get() == 1
    source.release = asyncio.Event()
    clock.now += 0.6
    assert await recent.get() == 1  # no wait: the renewal runs in the background
    assert await recent.get() == 1
    await asyncio.sleep(0)
    assert source.fetches == 2  # one renewal, however many callers
    source.release.set()
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert await recent.get() == 2


async def test_a_failed_fetch_fails_every_waiter_and_is_not_kept() -> None:
    source, clock = Source(), FakeClock()
    source.release, source.fail = asyncio.Event(), EngineUnavailable("gone")
    recent = Recent(source, 1.0, clock=clock)
    waiting = [asyncio.create_task(recent.get()) for _ in range(3)]
    await asyncio.sleep(0)
    source.release.set()
    results = await asyncio.gather(*waiting, return_exceptions=True)
    assert all(isinstance(r, EngineUnavailable) for r in results)
    assert source.fetches == 1
    source.fail = None
    assert await recent.get() == 2  # the next caller tries again


async def test_a_caller_that_leaves_does_not_cancel_the_fetch_of_the_others() -> None:
    source, clock = Source(), FakeClock()
    source.release = asyncio.Event()
    recent = Recent(source, 1.0, clock=clock)
    leaving, staying = asyncio.create_task(recent.get()), asyncio.create_task(recent.get())
    await asyncio.sleep(0)
    leaving.cancel()
    source.release.set()
    assert await staying == 1
    assert leaving.cancelled()


async def test_an_offered_value_counts_only_when_it_is_newer() -> None:
    source, clock = Source(), FakeClock()
    recent = Recent(source, 1.0, clock=clock)
    recent.offer(clock.now - 0.5, 10)
    assert await recent.get() == 10
    recent.offer(clock.now - 0.9, 11)  # older than what is kept
    assert await recent.get() == 10
    assert source.fetches == 0
    clock.now += 0.6
    assert await recent.get() == 1  # the offered one is too old now


@dataclass
class Latest:
    last_snapshot: EngineSnapshot | None = None
    last_snapshot_at: float | None = None


@dataclass
class CountingEngine(MemoryEngine):
    snapshots: int = 0
    gate: asyncio.Event | None = None
    down: bool = False

    async def snapshot(self) -> EngineSnapshot:
        self.snapshots += 1
        if self.gate is not None:
            await self.gate.wait()
        if self.down:
            raise EngineUnavailable("cannot connect")
        return await super().snapshot()


async def test_the_view_serves_the_reconcilers_snapshot_while_it_is_recent() -> None:
    engine, clock = CountingEngine(), FakeClock()
    theirs = EngineSnapshot(images=frozenset({"from-the-reconciler"}))
    latest = Latest(theirs, clock.now)
    view = EngineView(engine, latest, max_age_s=2.0, clock=clock)
    assert await view.snapshot() is theirs
    clock.now += 1.9
    assert await view.snapshot() is theirs
    assert engine.snapshots <= 1  # at most a renewal in the background
    clock.now += 5
    mine = await view.snapshot()
    assert mine is not theirs and "from-the-reconciler" not in mine.images


async def test_an_unreachable_engine_reaches_every_waiting_request() -> None:
    engine, clock = CountingEngine(down=True), FakeClock()
    view = EngineView(engine, Latest(), clock=clock)
    results = await asyncio.gather(*(view.snapshot() for _ in range(5)), return_exceptions=True)
    assert all(isinstance(r, EngineUnavailable) for r in results)
    assert engine.snapshots == 1


@pytest.fixture
async def counted(tmp_path: Path) -> AsyncIterator[tuple[TestClient[Any, Any], CountingEngine]]:
    engine = CountingEngine(registry={"reg/web:v1"})
    context = api_context(tmp_path, engine)
    app = create_app(context, api_key=KEY)
    async with TestClient(TestServer(app), headers={"Authorization": f"Bearer {KEY}"}) as client:
        service = {"serviceId": 1, "serviceName": "web", "imageName": "reg/web:v1"}
        body = {"apps": {"1001": {"appId": 1001, "appName": "demo", "services": [service]}}}
        assert (await client.post("/v2/local/target-state", json=body)).status == 200
        yield client, engine


@pytest.mark.parametrize(
    "path", ["/v1/device", "/v1/services", "/v1/apps/1001", "/v2/state/status", "/v2/containerId"]
)
async def test_a_burst_of_requests_costs_the_engine_one_snapshot(
    counted: tuple[TestClient[Any, Any], CountingEngine], path: str
) -> None:
    """Each of these routes asked the engine for a snapshot of its own (100 clients: 100
    snapshots at a time); now the requests of one moment share one."""
    client, engine = counted
    engine.gate = asyncio.Event()

    async def ask() -> int:
        response = await client.get(path)
        await response.read()
        return response.status

    burst = [asyncio.create_task(ask()) for _ in range(40)]
    await wait_for_async(lambda: engine.snapshots, 10, 0.01, "no request reached the engine")
    engine.gate.set()
    assert await asyncio.gather(*burst) == [200] * 40
    assert engine.snapshots == 1
    for _ in range(10):  # and the next ones, within the age limit, none at all
        assert await ask() == 200
    assert engine.snapshots == 1

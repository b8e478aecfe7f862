"""The health checks behind `GET /v1/healthy` (issue 12, items 7 and 9); the real engine
outage and the read-only database are in tests/integration/test_agent_health.py."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from api_support import KEY, FakeClock, api_context
from hypothesis import given
from hypothesis import strategies as st
from iotistic_agent.device_api import health as health_module
from iotistic_agent.device_api.app import create_app
from iotistic_agent.device_api.health import (
    DISK_FULL_BELOW_BYTES,
    DiskSpace,
    Health,
    disk_check,
    probe_database,
)
from iotistic_agent.device_api.shared import SHARED_KEY
from iotistic_agent.engine.memory import MemoryEngine
from iotistic_agent.store.db import open_database

from tests.integration.waiting import wait_for_async


class Pings:
    def __init__(self) -> None:
        self.answer = True
        self.calls = 0
        self.hang = False

    async def __call__(self) -> bool:
        self.calls += 1
        if self.hang:
            await asyncio.Event().wait()
        return self.answer


@pytest.fixture
def database(tmp_path: Path) -> Path:
    path = tmp_path / "device.sqlite"
    open_database(path).close()
    return path


@given(
    free=st.integers(min_value=0, max_value=2**50),
    total=st.integers(min_value=1, max_value=2**50),
)
def test_the_disk_is_full_below_the_floor_and_the_message_names_it(free: int, total: int) -> None:
    check = disk_check(Path("/data/iotistic"), DiskSpace(free, total, Path("/data")))
    assert check.ok is (free >= DISK_FULL_BELOW_BYTES)
    assert "/data/iotistic" in check.message and "/data" in check.message
    shown = f"{free // 1024} KiB" if free < 10 * 1024 * 1024 else f"{free / 1024**2:.0f} MiB"
    assert f"{shown} free" in check.message
    assert ("is full" in check.message) is not check.ok


def test_unreadable_disk_space_is_a_failure() -> None:
    check = disk_check(Path("/gone"), "No such file or directory")
    assert not check.ok and "/gone" in check.message and check.error == "disk_full"


async def test_the_engine_is_pinged_at_most_every_half_second(database: Path) -> None:
    pings, clock = Pings(), FakeClock()
    health = Health(pings, database, clock=clock)
    for _ in range(20):
        assert (await health.engine()).ok
    assert pings.calls == 1
    pings.answer = False
    clock.now += 0.6
    check = await health.engine()
    assert not check.ok and check.error == "engine_unavailable"
    assert pings.calls == 2


async def test_an_engine_that_does_not_answer_in_time_is_unavailable(
    database: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(health_module, "PING_TIMEOUT_S", 0.05)
    pings = Pings()
    pings.hang = True
    check = await Health(pings, database).engine()
    assert not check.ok and "no answer" in check.message


async def test_a_write_commits_on_a_working_database(database: Path) -> None:
    assert probe_database(database) is None
    assert (await Health(Pings(), database).database()).ok


def test_the_probe_never_creates_a_database(tmp_path: Path) -> None:
    missing = tmp_path / "nothing-here.sqlite"
    assert probe_database(missing) is not None
    assert not missing.exists()


async def test_a_failed_write_counts_at_once_until_the_probe_succeeds_again(
    database: Path,
) -> None:
    clock = FakeClock()
    health = Health(Pings(), database, clock=clock)
    assert (await health.database()).ok
    health.write_failed("database or disk is full")
    check = await health.database()
    assert not check.ok and check.error == "database_unwritable"
    assert f"cannot write {database}: database or disk is full" == check.message
    clock.now += 60
    assert (await health.database()).ok  # the probe writes again


class SwitchableEngine(MemoryEngine):
    reachable: bool = True

    async def ping(self) -> bool:
        return self.reachable


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[tuple[TestClient[Any, Any], Any]]:
    engine = SwitchableEngine()
    app = create_app(api_context(tmp_path, engine), api_key=KEY)
    async with TestClient(TestServer(app)) as test_client:
        yield test_client, engine


async def test_healthy_is_ok_then_names_each_failing_check(
    client: tuple[TestClient[Any, Any], SwitchableEngine],
) -> None:
    c, engine = client
    ok = await c.get("/v1/healthy")  # public: no key
    assert (ok.status, await ok.text()) == (200, "OK")

    engine.reachable = False

    async def failing() -> Any:
        response = await c.get("/v1/healthy")
        return await response.json() if response.status == 503 else None

    # The engine's last answer is kept for half a second.
    body = await wait_for_async(failing, 5, 0.05, "/v1/healthy stayed OK")
    assert body["error"] == "engine_unavailable"
    c.app[SHARED_KEY].health.write_failed("disk I/O error")
    body = await failing()
    assert body["error"] == "engine_unavailable"  # the first failing check's code
    assert "container engine unavailable" in body["message"]
    assert "disk I/O error" in body["message"]
    checks = {check["name"]: check["ok"] for check in body["checks"]}
    assert checks == {"engine": False, "database": False, "disk": True}

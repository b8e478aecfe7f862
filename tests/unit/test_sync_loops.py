"""Poll and report loops against a scriptable HTTP cloud on 127.0.0.1 (real aiohttp on both
sides). The real cloud is exercised by tests/integration/test_cloud_sync_e2e.py; here the
server can fail on demand, so that every outage path is deterministic."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from iotistic_agent.cloud.client import SyncClient
from iotistic_agent.cloud.poller import ETAG_KEY, TargetPoller
from iotistic_agent.cloud.reporter import StateReporter
from iotistic_agent.cloud.retry import ConnectionMonitor, RetryGate, RetryPolicy
from iotistic_agent.store.db import open_database
from iotistic_agent.store.device import CloudCredentials
from iotistic_agent.store.sync_store import SyncStore
from iotistic_agent.store.target_store import TargetStore
from iotistic_contracts.sync import StateReport

from tests.integration.waiting import wait_for_async

UUID = "3f2a0c1e-0000-4000-8000-000000000001"
KEY = "device-key-for-tests-0123456789"
TARGET = {
    "apps": {
        "1001": {
            "appId": 1001,
            "appName": "demo",
            "services": [{"serviceId": 1, "serviceName": "web", "imageName": "reg/web:v1"}],
        }
    },
    "config": {},
    "version": 7,
}


@dataclass
class FakeCloud:
    failing: bool = False
    target: dict[str, Any] = field(default_factory=lambda: dict(TARGET))
    etag: str = '"v7"'
    reports: list[dict[str, Any]] = field(default_factory=list)
    if_none_match: list[str | None] = field(default_factory=list)
    want_full_report: bool = False

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/api/v1/device/{uuid}/state", self.state)
        app.router.add_patch("/api/v1/device/state", self.report)
        return app

    def _check(self, request: web.Request) -> None:
        if self.failing:
            raise web.HTTPServiceUnavailable(text='{"error": "down for maintenance"}')
        if request.headers.get("Authorization") != f"Bearer {KEY}":
            raise web.HTTPUnauthorized(text='{"error": "bad key"}')

    async def state(self, request: web.Request) -> web.Response:
        self._check(request)
        self.if_none_match.append(request.headers.get("If-None-Match"))
        headers = {"ETag": self.etag}
        if self.want_full_report:
            headers["X-Iotistic-Full-Report"] = "true"
        if request.headers.get("If-None-Match") == self.etag:
            return web.Response(status=304, headers=headers)
        return web.json_response({UUID: self.target}, headers=headers)

    async def report(self, request: web.Request) -> web.Response:
        self._check(request)
        # aiohttp decompresses Content-Encoding: gzip request bodies itself.
        body = await request.read()
        parsed = StateReport.model_validate_json(body).root[UUID]
        self.reports.append(parsed.model_dump(exclude_none=True))
        return web.json_response({"status": "accepted", "sequence": parsed.sequence})


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def cloud() -> AsyncIterator[tuple[FakeCloud, str]]:
    fake = FakeCloud()
    server = TestServer(fake.app(), host="127.0.0.1")
    await server.start_server()
    yield fake, str(server.make_url("")).rstrip("/")
    await server.close()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as s:
        yield s


def client(session: aiohttp.ClientSession, endpoint: str) -> SyncClient:
    creds = CloudCredentials(
        uuid=UUID, endpoint=endpoint, api_key=KEY, ca_cert=None, verify_tls=True
    )
    return SyncClient(session, creds)


async def test_poll_stores_the_target_with_its_version_then_uses_the_etag(
    tmp_path: Path, cloud: tuple[FakeCloud, str], session: aiohttp.ClientSession
) -> None:
    fake, endpoint = cloud
    conn = open_database(tmp_path / "d.sqlite")
    targets, store = TargetStore(conn), SyncStore(conn, max_queued=10)
    woken: list[bool] = []
    clock = Clock()
    poller = TargetPoller(
        client(session, endpoint),
        targets,
        store,
        RetryGate(RetryPolicy(), clock),
        ConnectionMonitor(),
        lambda: woken.append(True),
        interval_s=60,
        clock=clock,
    )
    assert await poller.poll_once() is True
    assert targets.stored.version == 7 and targets.stored.source == "cloud"
    assert woken == [True]
    assert store.get(ETAG_KEY) == '"v7"'
    assert await poller.poll_once() is False  # 304
    assert fake.if_none_match == [None, '"v7"']
    # The ETag survives a restart: a new store on the same database still has it.
    assert SyncStore(open_database(tmp_path / "d.sqlite"), 10).get(ETAG_KEY) == '"v7"'


async def test_an_invalid_target_from_the_cloud_keeps_the_current_one(
    tmp_path: Path, cloud: tuple[FakeCloud, str], session: aiohttp.ClientSession
) -> None:
    fake, endpoint = cloud
    conn = open_database(tmp_path / "d.sqlite")
    targets, store = TargetStore(conn), SyncStore(conn, max_queued=10)
    clock, monitor = Clock(), ConnectionMonitor()
    gate = RetryGate(RetryPolicy(), clock)
    poller = TargetPoller(
        client(session, endpoint), targets, store, gate, monitor, lambda: None, 60, clock
    )
    await poller.poll_once()
    fake.target = {"apps": {"1001": {"appId": 1002, "appName": "x"}}, "version": 8}
    fake.etag = '"v8"'
    assert await poller.poll_once() is False
    assert targets.stored.version == 7
    assert "must equal its app's appId" in (gate.last_error or "")
    assert monitor.state == "online"  # the cloud answered: not a connection problem
    assert store.get(ETAG_KEY) == '"v7"'  # asked again next time


async def test_poll_failures_back_off_and_go_offline(
    tmp_path: Path, cloud: tuple[FakeCloud, str], session: aiohttp.ClientSession
) -> None:
    fake, endpoint = cloud
    fake.failing = True
    conn = open_database(tmp_path / "d.sqlite")
    clock, monitor = Clock(), ConnectionMonitor()
    gate = RetryGate(RetryPolicy(), clock, rand=lambda: 0.5)
    poller = TargetPoller(
        client(session, endpoint),
        TargetStore(conn),
        SyncStore(conn, 10),
        gate,
        monitor,
        lambda: None,
        60,
        clock,
    )
    for expected_delay in (15, 30, 60):
        await poller.poll_once()
        assert gate.next_attempt_at - clock.now == pytest.approx(expected_delay)
        clock.now = gate.next_attempt_at
    assert monitor.state == "offline"
    assert "503" in (gate.last_error or "") and "down for maintenance" in (gate.last_error or "")
    fake.failing = False
    await poller.poll_once()
    assert monitor.state == "online" and gate.errors == 0


def make_reporter(
    session: aiohttp.ClientSession,
    endpoint: str,
    store: SyncStore,
    clock: Clock,
    collect: Any,
    full_every_s: float = 300,
) -> tuple[StateReporter, RetryGate, ConnectionMonitor]:
    gate = RetryGate(RetryPolicy(base_s=1, max_s=1), clock, rand=lambda: 0.5)
    monitor = ConnectionMonitor()
    reporter = StateReporter(
        client(session, endpoint), store, gate, monitor, collect, 10, full_every_s, clock
    )
    return reporter, gate, monitor


async def report_through_an_outage(
    reporter: StateReporter, fake: FakeCloud, clock: Clock, reports: int
) -> None:
    """The cloud fails while the device builds ``reports`` more reports."""
    fake.failing = True
    for _ in range(reports):
        clock.now += 10
        await reporter.report_once()


class Device:
    """The device's state as the collector would see it; tests change it between reports."""

    def __init__(self) -> None:
        self.uptime = 0

    async def __call__(self) -> dict[str, Any]:
        self.uptime += 10
        return {"targetVersion": 7, "targetApplied": True, "uptime": self.uptime, "apps": {}}


async def test_first_report_is_full_then_diffs_then_full_again(
    tmp_path: Path, cloud: tuple[FakeCloud, str], session: aiohttp.ClientSession
) -> None:
    fake, endpoint = cloud
    clock = Clock()
    store = SyncStore(open_database(tmp_path / "d.sqlite"), 10)
    reporter, _, _ = make_reporter(session, endpoint, store, clock, Device(), full_every_s=25)
    for _ in range(4):
        await reporter.report_once()
        clock.now += 10
    assert [r["full"] for r in fake.reports] == [True, False, False, True]
    assert [r["sequence"] for r in fake.reports] == [1, 2, 3, 4]
    assert fake.reports[1] == {
        "full": False,
        "sequence": 2,
        "reportedAt": fake.reports[1]["reportedAt"],
        "uptime": 20,
    }
    assert store.queued() == 0  # a healthy device never writes reports to disk


async def test_reports_queue_on_disk_during_an_outage_and_arrive_in_order(
    tmp_path: Path, cloud: tuple[FakeCloud, str], session: aiohttp.ClientSession
) -> None:
    fake, endpoint = cloud
    clock = Clock()
    store = SyncStore(open_database(tmp_path / "d.sqlite"), 100)
    reporter, _, monitor = make_reporter(session, endpoint, store, clock, Device())
    await reporter.report_once()
    await report_through_an_outage(reporter, fake, clock, reports=5)
    assert store.queued() == 5 and monitor.state == "offline"
    fake.failing = False
    clock.now += 10
    await reporter.report_once()
    assert store.queued() == 0 and monitor.state == "online"
    assert [r["sequence"] for r in fake.reports] == [1, 2, 3, 4, 5, 6, 7]
    assert [r["uptime"] for r in fake.reports] == [10, 20, 30, 40, 50, 60, 70]


async def test_queued_reports_survive_an_agent_restart(
    tmp_path: Path, cloud: tuple[FakeCloud, str], session: aiohttp.ClientSession
) -> None:
    fake, endpoint = cloud
    clock = Clock()
    db = tmp_path / "d.sqlite"
    reporter, _, _ = make_reporter(
        session, endpoint, SyncStore(open_database(db), 100), clock, Device()
    )
    fake.failing = True
    for _ in range(3):
        await reporter.report_once()
        clock.now += 10
    fake.failing = False
    # A new process: the queue comes first, the sequence continues, the first new one is full.
    store = SyncStore(open_database(db), 100)
    again, _, _ = make_reporter(session, endpoint, store, Clock(), Device())
    await again.report_once()
    assert [r["sequence"] for r in fake.reports] == [1, 2, 3, 4]
    assert [r["full"] for r in fake.reports] == [True, False, False, True]


async def test_the_sequence_continues_after_a_clean_stop(
    tmp_path: Path, cloud: tuple[FakeCloud, str], session: aiohttp.ClientSession
) -> None:
    fake, endpoint = cloud
    db = tmp_path / "d.sqlite"
    clock = Clock()
    first, _, _ = make_reporter(
        session, endpoint, SyncStore(open_database(db), 100), clock, Device()
    )
    task = asyncio.create_task(first.run())
    await wait_for_async(lambda: len(fake.reports) >= 1, 5, 0.01)
    for sent in (1, 2):
        clock.now += 10
        first.report_now()
        await wait_for_async(lambda sent=sent: len(fake.reports) > sent, 5, 0.01)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    again, _, _ = make_reporter(
        session, endpoint, SyncStore(open_database(db), 100), Clock(), Device()
    )
    await again.report_once()
    assert [r["sequence"] for r in fake.reports] == [1, 2, 3, 4]
    assert fake.reports[-1]["full"] is True


async def test_a_full_queue_drops_the_oldest_and_the_next_report_is_full(
    tmp_path: Path, cloud: tuple[FakeCloud, str], session: aiohttp.ClientSession
) -> None:
    fake, endpoint = cloud
    clock = Clock()
    store = SyncStore(open_database(tmp_path / "d.sqlite"), 3)
    reporter, _, _ = make_reporter(session, endpoint, store, clock, Device())
    await reporter.report_once()
    await report_through_an_outage(reporter, fake, clock, reports=5)
    assert store.queued() == 3
    fake.failing = False
    clock.now += 10
    await reporter.report_once()
    # 2, 3 and 4 were dropped (the bound is 3, and 7 joined the queue behind 5 and 6).
    assert [r["sequence"] for r in fake.reports] == [1, 5, 6, 7]
    # The report built after each drop is full (drops happened as 5, 6 and 7 were queued):
    # the cloud's view is whole again once the queue has drained, although 5 was a diff
    # against a report that never arrived.
    assert [r["full"] for r in fake.reports] == [True, False, True, True]
    clock.now += 10
    await reporter.report_once()
    assert fake.reports[-1]["full"] is True and fake.reports[-1]["sequence"] == 8


async def test_an_unusable_api_ca_is_an_error_in_the_status_not_a_dead_task(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from iotistic_agent.cloud.sync import CloudSync, SyncTiming

    conn = open_database(tmp_path / "d.sqlite")
    creds = CloudCredentials(
        uuid=UUID, endpoint="https://cloud.invalid", api_key=KEY, ca_cert="CA", verify_tls=True
    )

    async def collect() -> dict[str, Any]:
        return {}

    sync = CloudSync(
        creds,
        TargetStore(conn),
        SyncStore(conn, 10),
        collect,
        lambda: None,
        SyncTiming(policy=RetryPolicy(base_s=0.01, max_s=0.05)),
    )
    task = asyncio.create_task(sync.run())
    await wait_for_async(lambda: sync.status()["state"] == "error", 5, 0.01)
    assert not task.done()  # it keeps trying: a corrected configuration would be picked up
    assert "CA certificate" in (sync.status()["setupError"] or "")
    assert "cloud sync cannot start" in caplog.text
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def test_the_cloud_asking_for_a_full_report_gets_one(
    tmp_path: Path, cloud: tuple[FakeCloud, str], session: aiohttp.ClientSession
) -> None:
    """A gap the cloud saw (a report lost after the broker took it) is repaired by the next
    report: the poll answer carries the request, even a 304."""
    fake, endpoint = cloud
    conn = open_database(tmp_path / "d.sqlite")
    store, clock = SyncStore(conn, 10), Clock()
    reporter, _, monitor = make_reporter(session, endpoint, store, clock, Device())
    poller = TargetPoller(
        client(session, endpoint),
        TargetStore(conn),
        store,
        RetryGate(RetryPolicy(), clock),
        monitor,
        lambda: None,
        60,
        clock,
        on_full_report_wanted=reporter.request_full,
    )
    await poller.poll_once()
    for _ in range(2):
        await reporter.report_once()
        clock.now += 10
    fake.want_full_report = True
    assert await poller.poll_once() is False  # 304, with the request
    await reporter.report_once()
    assert [r["full"] for r in fake.reports] == [True, False, True]

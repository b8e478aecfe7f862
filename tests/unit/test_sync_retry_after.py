"""The agent honours the cloud's Retry-After (seconds or an HTTP date) on 429 and 503 in
every client: poll, report, log upload and provisioning; never beyond its own maximum.
Real aiohttp servers on 127.0.0.1 answer; the loops' clocks are fakes, so nothing sleeps."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from hypothesis import given
from hypothesis import strategies as st
from iotistic_agent.backoff import Backoff
from iotistic_agent.cloud.client import SyncClient
from iotistic_agent.cloud.poller import TargetPoller
from iotistic_agent.cloud.reporter import StateReporter
from iotistic_agent.cloud.retry import ConnectionMonitor, RetryGate, RetryPolicy
from iotistic_agent.logs.outbox import LogOutbox
from iotistic_agent.logs.shipper import LogShipper
from iotistic_agent.logs.uploader import LogUploader
from iotistic_agent.provisioning.http import retry_after_s
from iotistic_agent.store.db import open_database
from iotistic_agent.store.device import CloudCredentials
from iotistic_agent.store.sync_store import SyncStore
from iotistic_agent.store.target_store import TargetStore
from provisioning_support import PROVISIONING_KEY, FakeCloud, make_device, start_cloud

from tests.integration.waiting import wait_for_async

UUID = "3f2a0c1e-0000-4000-8000-0000000000ab"
KEY = "device-key-for-tests-0123456789"
POLICY = RetryPolicy(base_s=15, max_s=900, jitter=0.2, circuit_cooldown_s=300)
NOW = datetime(2026, 5, 1, 10, 0, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Throttling:
    """Every device route answers `status` with `Retry-After: retry_after` (None: absent)."""

    status: int = 429
    retry_after: str | None = "120"
    hits: list[str] = field(default_factory=list)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.answer)
        return app

    async def answer(self, request: web.Request) -> web.Response:
        self.hits.append(f"{request.method} {request.path}")
        headers = {} if self.retry_after is None else {"Retry-After": self.retry_after}
        return web.json_response({"error": "slow down"}, status=self.status, headers=headers)


@pytest.fixture
async def cloud() -> AsyncIterator[tuple[Throttling, str]]:
    throttling = Throttling()
    server = TestServer(throttling.app(), host="127.0.0.1")
    await server.start_server()
    yield throttling, str(server.make_url("")).rstrip("/")
    await server.close()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as s:
        yield s


def credentials(endpoint: str) -> CloudCredentials:
    return CloudCredentials(
        uuid=UUID, endpoint=endpoint, api_key=KEY, ca_cert=None, verify_tls=True
    )


def http_date(seconds_from_now: float) -> str:
    return format_datetime(datetime.now(UTC) + timedelta(seconds=seconds_from_now), usegmt=True)


# --- reading the header ------------------------------------------------------------------------


def test_retry_after_is_read_as_seconds_or_an_http_date() -> None:
    assert retry_after_s("120", NOW) == 120
    assert retry_after_s(" 0 ", NOW) == 0
    assert retry_after_s("Fri, 01 May 2026 10:02:30 GMT", NOW) == 150
    assert retry_after_s("Fri, 01 May 2026 09:00:00 GMT", NOW) == 0  # already past


@pytest.mark.parametrize(
    "value", [None, "", "-5", "1.5", "soon", "120s", "Fri, 01 May 2026 10:02:30", "٣"]
)
def test_an_unreadable_retry_after_is_ignored(value: str | None) -> None:
    assert retry_after_s(value, NOW) is None


@given(st.text(max_size=40))
def test_any_header_value_gives_a_wait_or_nothing_never_an_error(value: str) -> None:
    wait = retry_after_s(value, NOW)
    assert wait is None or wait >= 0


@given(
    failures=st.integers(1, 20),
    asked=st.floats(0, 1e9),
    draw=st.floats(0, 1),
)
def test_the_wait_is_at_least_what_was_asked_and_at_most_the_maximum(
    failures: int, asked: float, draw: float
) -> None:
    backoff = Backoff(base_s=15, max_s=900)
    wait = backoff.delay_honouring(failures, asked, lambda: draw)
    assert wait <= 900
    assert wait >= min(asked, 900)
    assert wait >= backoff.delay(failures, lambda: draw)


# --- every client -------------------------------------------------------------------------------


def poller(
    session: aiohttp.ClientSession, endpoint: str, tmp_path: Path, clock: Clock
) -> tuple[TargetPoller, RetryGate]:
    conn = open_database(tmp_path / "d.sqlite")
    gate = RetryGate(POLICY, clock, rand=lambda: 0.5)
    client = SyncClient(session, credentials(endpoint))
    poll = TargetPoller(
        client,
        TargetStore(conn),
        SyncStore(conn, 10),
        gate,
        ConnectionMonitor(),
        lambda: None,
        60,
        clock,
    )
    return poll, gate


@pytest.mark.parametrize("status", [429, 503])
async def test_a_poll_waits_the_seconds_the_cloud_asks_for(
    tmp_path: Path, cloud: tuple[Throttling, str], session: aiohttp.ClientSession, status: int
) -> None:
    throttling, endpoint = cloud
    throttling.status, throttling.retry_after = status, "120"
    clock = Clock()
    poll, gate = poller(session, endpoint, tmp_path, clock)
    await poll.poll_once()
    # 120 s and a tenth more (the jitter at 0.5 spreads upwards), not the 15 s of backoff.
    assert gate.next_attempt_at - clock.now == pytest.approx(132)
    assert str(status) in (gate.last_error or "")


async def test_a_poll_waits_until_the_http_date_the_cloud_names(
    tmp_path: Path, cloud: tuple[Throttling, str], session: aiohttp.ClientSession
) -> None:
    throttling, endpoint = cloud
    throttling.status, throttling.retry_after = 503, http_date(300)
    clock = Clock()
    poll, gate = poller(session, endpoint, tmp_path, clock)
    await poll.poll_once()
    # One-second resolution of the date, and the time the request took.
    assert 297 * 1.1 <= gate.next_attempt_at - clock.now <= 300 * 1.1


async def test_a_longer_wait_than_the_agent_allows_is_cut_to_its_maximum(
    tmp_path: Path, cloud: tuple[Throttling, str], session: aiohttp.ClientSession
) -> None:
    throttling, endpoint = cloud
    throttling.retry_after = "86400"  # a day: the device would be out of touch for that long
    clock = Clock()
    poll, gate = poller(session, endpoint, tmp_path, clock)
    await poll.poll_once()
    assert gate.next_attempt_at - clock.now == POLICY.max_s


async def test_without_retry_after_the_backoff_applies(
    tmp_path: Path, cloud: tuple[Throttling, str], session: aiohttp.ClientSession
) -> None:
    throttling, endpoint = cloud
    throttling.status, throttling.retry_after = 503, None
    clock = Clock()
    poll, gate = poller(session, endpoint, tmp_path, clock)
    await poll.poll_once()
    assert gate.next_attempt_at - clock.now == pytest.approx(15)


async def test_a_report_waits_what_the_cloud_asks_and_stays_queued(
    tmp_path: Path, cloud: tuple[Throttling, str], session: aiohttp.ClientSession
) -> None:
    throttling, endpoint = cloud
    throttling.status, throttling.retry_after = 503, "600"
    conn = open_database(tmp_path / "d.sqlite")
    store, clock = SyncStore(conn, 10), Clock()
    gate = RetryGate(POLICY, clock, rand=lambda: 0.5)

    async def collect() -> dict[str, object]:
        return {"targetVersion": 1, "targetApplied": True, "apps": {}}

    reporter = StateReporter(
        SyncClient(session, credentials(endpoint)),
        store,
        gate,
        ConnectionMonitor(),
        collect,
        10,
        300,
        clock,
    )
    await reporter.report_once()
    assert gate.next_attempt_at - clock.now == pytest.approx(660)
    assert store.queued() == 1
    clock.now += 100  # the report interval passes, the cloud's wait does not
    await reporter.report_once()
    assert throttling.hits == ["PATCH /api/v1/device/state"]  # no second try yet
    assert store.queued() == 2


async def test_a_log_upload_waits_what_the_cloud_asks_and_keeps_the_records(
    tmp_path: Path, cloud: tuple[Throttling, str], session: aiohttp.ClientSession
) -> None:
    throttling, endpoint = cloud
    throttling.status, throttling.retry_after = 429, "240"
    clock = Clock()
    outbox = LogOutbox(tmp_path / "outbox.sqlite", max_records=1000)
    uploader = LogUploader(session, credentials(endpoint), compress=True)
    # Without jitter: the wait is exactly the cloud's.
    no_jitter = RetryPolicy(base_s=15, max_s=900, jitter=0.0, circuit_cooldown_s=300)
    shipper = LogShipper(outbox, uploader, 3600, no_jitter, clock=clock)
    task = asyncio.create_task(shipper.run())
    try:
        record = {
            "timestamp": "2026-05-01T10:00:00.000000Z",
            "level": "info",
            "source": "agent",
            "component": "agent",
            "message": "hello",
        }
        await shipper.put(record)
        await asyncio.wait_for(shipper.settled(), 10)
        assert await shipper.drain() is False
        assert shipper.gate.next_attempt_at - clock.now == 240
        assert outbox.pending() == 1
        assert await shipper.drain() is False  # still waiting: nothing sent
        assert throttling.hits == [f"POST /api/v1/device/{UUID}/logs"]
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_automatic_provisioning_waits_what_the_cloud_asks(tmp_path: Path) -> None:
    cloud = FakeCloud()
    cloud.key_exchange_failure = web.json_response(
        {"error": "too many key exchanges"}, status=429, headers={"Retry-After": "90"}
    )
    server = await start_cloud(cloud)
    device = make_device(
        tmp_path,
        {"PROVISIONING_API_KEY": PROVISIONING_KEY, "CLOUD_API_ENDPOINT": cloud.url},
        Backoff(base_s=5, max_s=300, jitter=0.2),
        rand=lambda: 0.5,
    )
    task = asyncio.create_task(device.provisioner.run())
    try:
        await wait_for_async(lambda: device.provisioner.status()["nextAttemptAt"], 10, 0.01)
        status = device.provisioner.status()
        wait = datetime.fromisoformat(status["nextAttemptAt"].replace("Z", "+00:00"))
        assert 90 * 1.1 - 2 <= (wait - datetime.now(UTC)).total_seconds() <= 90 * 1.1
        assert "the cloud asks to retry in 90 s" in status["lastError"]
        assert cloud.requests == [("POST", "/api/provisioning/v2/key-exchange")]
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await server.close()

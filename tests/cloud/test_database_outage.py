"""A database outage is a 503 with Retry-After, one log line when it starts and one when it
ends, never a traceback per request.

Against the real ``iotistic-cloud serve`` on a real PostgreSQL server that is stopped in the
middle of the run (and started again), and with its connection pool exhausted by requests
stuck behind a table lock.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest

from tests.cloud.device_kit import KEY_EXCHANGE, REPORT, SimDevice, new_uuid, provision, report
from tests.integration.waiting import wait_for_async
from tests.support.cloud_process import CloudProcess
from tests.support.postgres import PostgresServer, postgres_or_fail

WAIT_S = 60
UNAVAILABLE = {"error": "database unavailable; try again later"}
OUTAGE_STARTED = "database unavailable ("
OUTAGE_ENDED = "database available again after"


@pytest.fixture(scope="module")
def own_postgres() -> Iterator[PostgresServer]:
    """A server of this module's own: the test stops it."""
    with postgres_or_fail("the database outage tests") as server:
        yield server


def assert_one_outage(log: str) -> None:
    """One line when it started, one when it ended, and no traceback or error."""
    assert log.count(OUTAGE_STARTED) == 1, log
    assert log.count(OUTAGE_ENDED) == 1, log
    assert "Traceback" not in log and " ERROR " not in log, log


async def provisioned(cloud: CloudProcess, client: httpx.AsyncClient) -> SimDevice:
    key = cloud.cli("keys", "create", "--quiet").stdout.strip()
    return await provision(client, key)


async def device_calls(
    client: httpx.AsyncClient, cloud: CloudProcess, device: SimDevice
) -> list[httpx.Response]:
    """One of each kind of request: a device's, an admin's, provisioning, health."""
    return [
        await client.get(device.state_path, headers=device.auth),
        await client.patch(REPORT, json=report(device.uuid, 9), headers=device.auth),
        await client.get("/api/admin/v1/devices", headers=cloud.admin_headers),
        await client.post(
            KEY_EXCHANGE, json={"deviceUuid": new_uuid(), "provisioningApiKey": "ipk_" + "x" * 43}
        ),
        await client.get("/health"),
    ]


async def test_a_stopped_server_is_503_and_logged_once(
    own_postgres: PostgresServer, tmp_path: Path
) -> None:
    database_url = own_postgres.create_database("outage")
    cloud = CloudProcess(tmp_path / "cloud", database_url=database_url).start()
    try:
        async with httpx.AsyncClient(base_url=cloud.url, timeout=WAIT_S) as client:
            device = await provisioned(cloud, client)
            assert (await client.get(device.state_path, headers=device.auth)).status_code == 200

            own_postgres.pause()
            for _ in range(3):
                for answer in await device_calls(client, cloud, device):
                    assert answer.status_code == 503, answer.text
                    assert answer.headers["Retry-After"] == "5"
                    if answer.url.path != "/health":
                        assert answer.json() == UNAVAILABLE
            assert cloud.log().count(OUTAGE_STARTED) == 1, cloud.log()
            assert OUTAGE_ENDED not in cloud.log()

            own_postgres.resume()

            async def polled() -> bool:
                answer = await client.get(device.state_path, headers=device.auth)
                return answer.status_code == 200

            await wait_for_async(polled, WAIT_S, 0.2, "the cloud did not recover")
            for answer in await device_calls(client, cloud, device):
                assert answer.status_code < 500, answer.text
    finally:
        cloud.stop()
    assert_one_outage(cloud.log())


Connections = tuple[asyncpg.Connection, asyncpg.Connection]


@pytest.fixture
async def pool_outage(postgres: PostgresServer) -> AsyncIterator[tuple[str, Connections]]:
    """A database, and two connections of the test's own: one locks, one watches."""
    url = postgres.create_database("pool_outage")
    locker, watcher = await asyncpg.connect(url), await asyncpg.connect(url)
    try:
        yield url, (locker, watcher)
    finally:
        await locker.close()
        await watcher.close()
        postgres.drop_database("pool_outage")


async def test_an_exhausted_pool_is_503_without_waiting_long(
    pool_outage: tuple[str, Connections], tmp_path: Path
) -> None:
    database_url, (connection, watcher) = pool_outage
    # Two pooled connections and one overflow: three stuck requests hold them all.
    cloud = CloudProcess(
        tmp_path / "cloud",
        database_url=database_url,
        DATABASE_POOL_SIZE="2",
        DATABASE_WAIT_TIMEOUT_S="1",
    ).start()
    try:
        async with httpx.AsyncClient(base_url=cloud.url, timeout=WAIT_S) as client:
            device = await provisioned(cloud, client)
            lock = connection.transaction()
            await lock.start()
            await connection.execute("LOCK TABLE devices IN ACCESS EXCLUSIVE MODE")
            stuck = [
                asyncio.create_task(client.get(device.state_path, headers=device.auth))
                for _ in range(3)
            ]

            async def all_waiting() -> bool:
                # Not on the locking connection: a transaction sees one snapshot of the view.
                waiting = await watcher.fetchval(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                    "AND application_name = 'iotistic-cloud'"
                )
                return bool(waiting == 3)

            await wait_for_async(all_waiting, WAIT_S, 0.1, "the polls did not get stuck")
            for _ in range(3):
                refused = await client.get(device.state_path, headers=device.auth)
                assert refused.status_code == 503, refused.text
                assert refused.headers["Retry-After"] == "5"
                assert refused.json() == UNAVAILABLE
            assert cloud.log().count(OUTAGE_STARTED + "busy") == 1, cloud.log()

            await lock.rollback()
            assert [answer.status_code for answer in await asyncio.gather(*stuck)] == [200] * 3
            assert (await client.get(device.state_path, headers=device.auth)).status_code == 200
    finally:
        cloud.stop()
    assert_one_outage(cloud.log())

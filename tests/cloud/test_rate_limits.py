"""Rate limits (429 with Retry-After) per device and per provisioning key, the bound on key
pair generation a leaked provisioning key could otherwise exhaust the CPU with, and load
shedding (503 with Retry-After at once) when too many requests are in progress.

Against the real ``iotistic-cloud serve`` over real sockets, with small limits set through
its environment variables.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from iotistic_contracts.sealed import generate_private_key, public_key_pem

from tests.cloud.device_kit import REPORT, key_exchange, new_uuid, provision
from tests.integration.waiting import wait_for, wait_for_async
from tests.support.cloud_process import CloudProcess

WAIT_S = 60
# A sixth of a minute's worth at once: 2 requests, then one every 5 s.
DEVICE_PER_MIN = 12
PROVISIONING_PER_MIN = 12
BURST = 2


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CloudProcess]:
    process = CloudProcess(
        tmp_path_factory.mktemp("cloud"),
        DEVICE_RATE_LIMIT_PER_MIN=str(DEVICE_PER_MIN),
        PROVISIONING_RATE_LIMIT_PER_MIN=str(PROVISIONING_PER_MIN),
        MAX_CONCURRENT_REQUESTS="2",
        OVERLOAD_RETRY_AFTER_S="7",
    ).start()
    try:
        yield process
    finally:
        process.stop()
    assert "Traceback" not in process.log()


def new_key(cloud: CloudProcess) -> str:
    result = cloud.cli("keys", "create", "--quiet")
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def assert_throttled(answer: httpx.Response, what: str, per_min: int) -> None:
    assert answer.status_code == 429, answer.text
    assert answer.json() == {
        "error": f"too many requests for this {what} (at most {per_min} a minute); "
        "try again later"
    }
    # One request's worth comes back every 60 / per_min seconds.
    assert 1 <= int(answer.headers["Retry-After"]) <= 60 // per_min


async def test_a_device_past_its_rate_is_429_and_others_go_on(cloud: CloudProcess) -> None:
    async with httpx.AsyncClient(base_url=cloud.url, timeout=WAIT_S) as client:
        # Provisioning costs each device nothing of its own limit (no device key yet).
        greedy = await provision(client, new_key(cloud))
        honest = await provision(client, new_key(cloud))
        for _ in range(BURST):
            assert (await client.get(greedy.state_path, headers=greedy.auth)).status_code == 200
        # Every device route counts, the report and the log upload too.
        assert_throttled(
            await client.get(greedy.state_path, headers=greedy.auth), "device", DEVICE_PER_MIN
        )
        answer = await client.patch(REPORT, json={}, headers=greedy.auth)
        assert_throttled(answer, "device", DEVICE_PER_MIN)
        logs = await client.post(
            f"/api/v1/device/{greedy.uuid}/logs",
            content=b"",
            headers={**greedy.auth, "Content-Type": "application/x-ndjson"},
        )
        assert_throttled(logs, "device", DEVICE_PER_MIN)
        # Another device has its own share.
        assert (await client.get(honest.state_path, headers=honest.auth)).status_code == 200


async def test_a_leaked_provisioning_key_cannot_make_key_pairs_without_bound(
    cloud: CloudProcess,
) -> None:
    """Each key exchange for a new uuid, or one replacing an exchange with another device
    public key, costs a fresh RSA key pair: past its rate the key is refused before any."""
    leaked, honest = new_key(cloud), new_key(cloud)
    victim = new_uuid()
    device_keys = [public_key_pem(generate_private_key()) for _ in range(BURST)]
    async with httpx.AsyncClient(base_url=cloud.url, timeout=WAIT_S) as client:
        key_ids = set()
        for device_key in device_keys:
            answer = await key_exchange(client, victim, leaked, device_key)
            assert answer.status_code == 200, answer.text
            key_ids.add(answer.json()["keyId"])
        assert len(key_ids) == BURST  # the second replaced the first
        refused = await key_exchange(client, new_uuid(), leaked)
        assert_throttled(refused, "provisioning key", PROVISIONING_PER_MIN)
        # A device with another provisioning key registers as usual.
        device = await provision(client, honest)
        assert (await client.get(device.state_path, headers=device.auth)).status_code == 200


async def test_key_pairs_are_made_one_at_a_time_with_a_bounded_queue(tmp_path: Path) -> None:
    """Many exchanges at once: past the queue of key pairs to make, 503 with Retry-After
    instead of a pile of work."""
    # No rate limit, and no shedding in the way of 80 requests at once.
    cloud = CloudProcess(tmp_path / "cloud", MAX_CONCURRENT_REQUESTS="0").start()
    try:
        key = new_key(cloud)
        limits = httpx.Limits(max_connections=100)
        async with httpx.AsyncClient(base_url=cloud.url, timeout=WAIT_S, limits=limits) as client:
            answers = await asyncio.gather(
                *(key_exchange(client, new_uuid(), key) for _ in range(80))
            )
        statuses = [answer.status_code for answer in answers]
        assert set(statuses) == {200, 503}, statuses
        busy = next(answer for answer in answers if answer.status_code == 503)
        assert busy.json() == {
            "error": "the cloud is busy making key pairs for key exchanges; try again later"
        }
        assert busy.headers["Retry-After"] == "2"
    finally:
        cloud.stop()


def slow_request(cloud: CloudProcess, token: str) -> socket.socket:
    """A report whose body has not arrived yet: a request in progress until it does."""
    host, port = cloud.url.removeprefix("http://").rsplit(":", 1)
    sock = socket.create_connection((host, int(port)), timeout=WAIT_S)
    sock.sendall(
        f"PATCH {REPORT} HTTP/1.1\r\nHost: cloud\r\nAuthorization: Bearer {token}\r\n"
        "Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{".encode()
    )
    return sock


async def test_past_its_concurrency_the_cloud_sheds_at_once(cloud: CloudProcess) -> None:
    async with httpx.AsyncClient(base_url=cloud.url, timeout=WAIT_S) as client:
        device = await provision(client, new_key(cloud))
        slow = [slow_request(cloud, device.api_key) for _ in range(2)]
        try:
            wait_for(
                lambda: httpx.get(f"{cloud.url}{device.state_path}").status_code == 503,
                WAIT_S,
                message="the two slow requests did not fill the cloud",
            )
            refused = await client.get(device.state_path, headers=device.auth)
            assert refused.status_code == 503
            assert refused.json() == {"error": "the cloud is overloaded; try again later"}
            assert 7 <= int(refused.headers["Retry-After"]) <= 14
            # Health checks and the admin API always get through.
            assert (await client.get("/health")).status_code == 200
            admin = await client.get("/api/admin/v1/devices", headers=cloud.admin_headers)
            assert admin.status_code == 200
        finally:
            for sock in slow:
                sock.sendall(b"}")
                sock.close()

        async def admitted() -> bool:
            # A refused request never reaches the device's rate limit: it costs nothing.
            answer = await client.get(device.state_path, headers=device.auth)
            return answer.status_code == 200

        await wait_for_async(admitted, WAIT_S, 0.1, "requests were not admitted again")
    assert cloud.log().count("overloaded (2 requests in progress)") == 1

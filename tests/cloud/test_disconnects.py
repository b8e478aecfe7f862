"""Clients that go away are not errors of the cloud: no traceback, no error line.

Against the real ``iotistic-cloud serve`` over real sockets: a device or admin that closes
its connection before its request body has arrived (a device timing out under load), and
an admin following a device's logs while the device is deleted (the stream ends cleanly).
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import httpx
import pytest

from tests.cloud.device_kit import REPORT, SimDevice, provision
from tests.integration.waiting import wait_for
from tests.support.cloud_process import CloudProcess

WAIT_S = 30
NDJSON = "application/x-ndjson"


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CloudProcess]:
    process = CloudProcess(tmp_path_factory.mktemp("cloud")).start("--log-level", "debug")
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture(scope="module")
async def device(cloud: CloudProcess) -> SimDevice:
    key = cloud.cli("keys", "create", "--quiet").stdout.strip()
    async with httpx.AsyncClient(base_url=cloud.url, timeout=WAIT_S) as client:
        return await provision(client, key)


def errors_in(log: str) -> list[str]:
    return [line for line in log.splitlines() if " ERROR " in line or "Traceback" in line]


def half_request(
    cloud: CloudProcess, method: str, path: str, token: str, content_type: str
) -> None:
    """Headers promising 1000 bytes of body, 6 of them, then the connection closes."""
    host, port = cloud.url.removeprefix("http://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=WAIT_S) as sock:
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: cloud\r\nAuthorization: Bearer {token}\r\n"
            f"Content-Type: {content_type}\r\nContent-Length: 1000\r\n\r\n"
        )
        sock.sendall(head.encode() + b'{"a": ')
    # The cloud was reading the body when the client went: it says so at debug level.
    wait_for(
        lambda: f"client went away during {method} {path}" in cloud.log(),
        WAIT_S,
        message=f"the cloud did not see the client go; log:\n{cloud.log()}",
    )


# The routes that read their raw body (FastAPI's own body parsing, as in the key exchange,
# answers a client gone mid-body with a silent 400).
@pytest.mark.parametrize("route", ["report", "logs", "target"])
def test_a_client_gone_before_its_body_is_not_an_error(
    cloud: CloudProcess, device: SimDevice, route: str
) -> None:
    json = "application/json"
    method, path, token, content_type = {
        "report": ("PATCH", REPORT, device.api_key, json),
        "logs": ("POST", f"/api/v1/device/{device.uuid}/logs", device.api_key, NDJSON),
        "target": ("PUT", f"/api/admin/v1/devices/{device.uuid}/target", cloud.admin_token, json),
    }[route]
    half_request(cloud, method, path, token, content_type)
    assert errors_in(cloud.log()) == []
    assert httpx.get(f"{cloud.url}/health", timeout=WAIT_S).status_code == 200


async def test_deleting_a_device_ends_its_log_follow_streams(cloud: CloudProcess) -> None:
    key = cloud.cli("keys", "create", "--quiet").stdout.strip()
    async with httpx.AsyncClient(base_url=cloud.url, timeout=WAIT_S) as client:
        doomed = await provision(client, key)
        path = f"/api/admin/v1/devices/{doomed.uuid}/logs"
        async with client.stream(
            "GET", path, params={"follow": "true"}, headers=cloud.admin_headers
        ) as stream:
            assert stream.status_code == 200
            deleted = await client.delete(
                f"/api/admin/v1/devices/{doomed.uuid}", headers=cloud.admin_headers
            )
            assert deleted.status_code == 204
            # The stream ends as a complete chunked body: no protocol error on the client.
            assert [line async for line in stream.aiter_lines() if line] == []
    wait_for(
        lambda: f"log follow of device {doomed.uuid} ended: the device was deleted" in cloud.log(),
        WAIT_S,
        message=cloud.log(),
    )
    assert errors_in(cloud.log()) == []

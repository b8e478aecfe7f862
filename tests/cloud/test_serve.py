"""The real server process: ``iotistic-cloud serve``, provisioning and sync over real HTTP."""

from __future__ import annotations

import gzip
import json
import signal
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.cloud.device_kit import REPORT, provision, report, target
from tests.support.cloud_process import CloudProcess
from tests.support.postgres import PostgresServer

# uvicorn shuts down cleanly on SIGTERM, then exits by the same signal (as init systems expect).
STOPPED = (0, -signal.SIGTERM)


@pytest.fixture
def pg_url(postgres: PostgresServer) -> Iterator[str]:
    yield postgres.create_database("serve_e2e")
    postgres.drop_database("serve_e2e")


async def exercise(cloud: CloudProcess, admin: dict[str, str]) -> None:
    """A provisioning key from the CLI, then a device's whole life over HTTP."""
    created = cloud.cli("keys", "create", "--quiet", "--max-devices", "5")
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip()
    async with httpx.AsyncClient(base_url=cloud.url, timeout=10) as client:
        device = await provision(client, key, name="e2e")
        assert device.registration.api.endpoint == cloud.url

        first = await client.get(device.state_path, headers=device.auth)
        assert first.status_code == 200
        etag = first.headers["etag"]
        assert (
            await client.get(device.state_path, headers={**device.auth, "If-None-Match": etag})
        ).status_code == 304

        desired = target((1001, "web", "nginx:1.25"))
        path = f"/api/admin/v1/devices/{device.uuid}/target"
        assert (await client.put(path, json=desired, headers=admin)).json()["version"] == 1
        changed = await client.get(
            device.state_path, headers={**device.auth, "If-None-Match": etag}
        )
        assert changed.json()[device.uuid]["version"] == 1

        body = gzip.compress(json.dumps(report(device.uuid, 1, full=True, uptime=5)).encode())
        headers = {**device.auth, "Content-Encoding": "gzip", "Content-Type": "application/json"}
        answer = await client.patch(REPORT, content=body, headers=headers)
        assert answer.json() == {"status": "accepted", "sequence": 1}

        listed = cloud.cli("devices", "list", "--json")
        assert [d["uuid"] for d in json.loads(listed.stdout)] == [device.uuid]

    # Secrets never reach the log.
    log = cloud.log()
    for secret in (key, device.api_key, device.mqtt_password):
        assert secret not in log
    assert "Traceback" not in log


async def test_serve_on_postgresql(pg_url: str, tmp_path: Path) -> None:
    cloud = CloudProcess(tmp_path / "cloud", database_url=pg_url).start()
    try:
        await exercise(cloud, cloud.admin_headers)
    finally:
        assert cloud.stop() in STOPPED, cloud.log()
    assert "iotistic-cloud listening on http://127.0.0.1:" in cloud.log()
    assert "Application shutdown complete" in cloud.log()

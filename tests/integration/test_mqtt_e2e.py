"""End to end over MQTT with real processes: Mosquitto (TLS, dynamic security), the cloud
managing it, and an agent that provisions itself, connects over TLS with what it was given,
polls at once when the cloud changes its target, and reports over MQTT."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.agent_process import AgentProcess, app, svc, target
from tests.integration.dockerkit import ImageSet
from tests.integration.waiting import wait_for
from tests.support.cloud_process import CloudProcess
from tests.support.mosquitto import MosquittoBroker, mosquitto_or_fail

POLL_MS = 60000  # the default: anything faster than a minute below comes from the trigger


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[MosquittoBroker]:
    with mosquitto_or_fail(tmp_path / "broker", "the MQTT end-to-end tests") as running:
        yield running


@pytest.fixture
def cloud(tmp_path: Path, broker: MosquittoBroker) -> Iterator[CloudProcess]:
    proc = CloudProcess(
        tmp_path / "cloud",
        MQTT_BROKER_URL=broker.url(tls=True),
        MQTT_CA_CERT_FILE=str(broker.ca_cert_path),
        MQTT_ADMIN_URL=broker.url(),
        MQTT_PASSWORD=broker.admin_password,
    ).start()
    try:
        yield proc
    finally:
        proc.stop()


def device_view(cloud: CloudProcess, device: str) -> dict[str, Any]:
    response = httpx.get(
        f"{cloud.url}/api/admin/v1/devices/{device}", headers=cloud.admin_headers, timeout=10
    )
    assert response.status_code == 200, response.text
    view: dict[str, Any] = response.json()
    return view


def test_cloud_change_reaches_the_device_over_mqtt_and_reports_come_back(
    tmp_path: Path, cloud: CloudProcess, images: ImageSet, docker_clean: None
) -> None:
    key = cloud.cli("keys", "create", "--quiet").stdout.strip()
    agent = AgentProcess(
        tmp_path / "agent",
        PROVISIONING_API_KEY=key,
        CLOUD_API_ENDPOINT=cloud.url,
        POLL_INTERVAL_MS=str(POLL_MS),
        REPORT_INTERVAL_MS="500",
    ).start()
    try:
        device = wait_for(
            lambda: (s := agent.get("/v1/provision").json())["provisioned"] and s["uuid"],
            30,
            message=f"not provisioned; log:\n{agent.log()[-3000:]}",
        )
        mqtt = wait_for(
            lambda: (m := agent.get("/v1/device").json()["mqtt"])["state"] == "connected" and m,
            30,
            message=f"no MQTT connection; log:\n{agent.log()[-3000:]}",
        )
        assert mqtt["broker"].startswith("mqtts://")

        # The cloud's change triggers a poll at once, a minute before the next regular one.
        wanted = {**target(app(1001, svc(1, "web", images.v1))), "config": {}}
        changed_at = time.monotonic()
        put = httpx.put(
            f"{cloud.url}/api/admin/v1/devices/{device}/target",
            json=wanted,
            headers=cloud.admin_headers,
            timeout=10,
        )
        assert put.status_code == 200, put.text
        version = put.json()["version"]
        wait_for(lambda: agent.get("/v1/device").json()["targetVersion"] == version, 10, 0.02)
        reaction_s = time.monotonic() - changed_at
        assert reaction_s < 3, f"the update trigger took {reaction_s:.2f}s"
        agent.wait_status(1001, "web", "Running", 60)

        # Reports travel over MQTT and land in the same place as HTTP ones.
        def reported_running() -> bool:
            apps = (device_view(cloud, device).get("reportedState") or {}).get("apps") or {}
            web = ((apps.get("1001") or {}).get("services") or {}).get("web") or {}
            return web.get("status") == "Running"

        wait_for(reported_running, 30, 0.2, "the cloud never saw web running")
        assert agent.get("/v1/device").json()["mqtt"]["state"] == "connected"
        print(f"\n[mqtt e2e] cloud change -> device holds the target in {reaction_s * 1000:.0f} ms")

        # Deleting the device on the cloud removes its broker account and disconnects it.
        deleted = httpx.delete(
            f"{cloud.url}/api/admin/v1/devices/{device}", headers=cloud.admin_headers, timeout=10
        )
        assert deleted.status_code in (200, 204), deleted.text
        wait_for(
            lambda: agent.get("/v1/device").json()["mqtt"]["state"] != "connected",
            15,
            message="the deleted device stayed connected",
        )
    finally:
        agent.stop()

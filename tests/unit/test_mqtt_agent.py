"""The real agent process with a real Mosquitto: MQTT starts when the device is provisioned
(at start-up, or right after provisioning), stops on deprovisioning, shows in /v1/device,
turns the update trigger into a poll and carries the state reports; an agent without MQTT
never imports aiomqtt or paho."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from iotistic_agent.store.db import open_database
from iotistic_agent.store.device import DeviceStore
from iotistic_contracts.mqtt import state_topic, update_topic
from provisioning_support import PROVISIONING_KEY, FakeCloud, running_cloud
from test_mqtt_broker import admin, watching
from test_provisioning_agent import Agent, imported
from test_provisioning_store import registration

from tests.integration.waiting import wait_for_async
from tests.support.mosquitto import MosquittoBroker, mosquitto_or_fail

WAIT_S = 30


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[MosquittoBroker]:
    with mosquitto_or_fail(tmp_path / "mosquitto", "the agent's MQTT tests") as running:
        yield running


@pytest.fixture
async def cloud() -> AsyncIterator[FakeCloud]:
    async with running_cloud() as fake:
        yield fake


async def mqtt_status(agent: Agent) -> dict[str, Any]:
    status: dict[str, Any] = (await agent.client.get("/v1/device")).json()["mqtt"]
    return status


def provision_for(broker: MosquittoBroker, data_dir: Path) -> str:
    """Store a registration whose MQTT broker is ``broker`` (plain listener); returns the uuid."""
    data_dir.mkdir(parents=True, exist_ok=True)
    devices = DeviceStore(open_database(data_dir / "device.sqlite"))
    device_uuid = devices.ensure_identity().uuid
    password = broker.add_device(device_uuid)
    devices.save_registration(
        registration(
            api_endpoint="http://127.0.0.1:9",  # no cloud API: reports can only go over MQTT
            api_tls_config=None,
            mqtt_broker_url=broker.url(),
            mqtt_username=f"device_{device_uuid}",
            mqtt_password=password,
            mqtt_broker_config={
                "protocol": "mqtt",
                "host": broker.host,
                "port": broker.plain_port,
                "useTls": False,
            },
        )
    )
    return device_uuid


async def test_a_provisioned_agent_uses_its_broker(tmp_path: Path, broker: MosquittoBroker) -> None:
    device_uuid = provision_for(broker, tmp_path / "agent")
    agent = Agent(
        tmp_path / "agent",
        REPORT_INTERVAL_MS="300",
        CLOUD_BACKOFF_BASE_MS="100",
        CLOUD_BACKOFF_MAX_MS="300",
        LOG_LEVEL="info",
    )
    try:
        async with watching(broker, state_topic(device_uuid)) as reports:
            await agent.start()

            async def connected() -> bool:
                return (await mqtt_status(agent))["state"] == "connected"

            await agent.until(connected, "the agent did not connect to the broker", WAIT_S)
            status = await mqtt_status(agent)
            assert status["broker"] == broker.url() and status["lastError"] is None
            # The HTTP cloud is unreachable, so reports reach the cloud through the broker.
            await wait_for_async(lambda: reports, WAIT_S, 0.05, "no report over MQTT")
            report = json.loads(reports[0])
            assert list(report) == [device_uuid] and report[device_uuid]["sequence"] >= 1
        async with admin(broker) as cloud:
            await cloud.publish(update_topic(device_uuid), b"", qos=1)

        async def triggered() -> bool:
            return (await mqtt_status(agent))["updatesReceived"] == 1

        await agent.until(triggered, "the update trigger did not arrive", WAIT_S)
        await agent.until(
            lambda: agent.logged("MQTT update trigger: polling the cloud now"), "no poll logged"
        )
    finally:
        stderr = await agent.stop()
    assert imported(stderr, "aiomqtt")  # the probe sees it when it is loaded


async def test_mqtt_starts_after_provisioning_and_stops_on_deprovisioning(
    tmp_path: Path, cloud: FakeCloud
) -> None:
    agent = Agent(tmp_path, CLOUD_API_ENDPOINT=cloud.url)
    try:
        await agent.start()
        assert (await mqtt_status(agent))["state"] == "not configured"
        answer = await agent.client.post(
            "/v1/provision", json={"provisioningApiKey": PROVISIONING_KEY}
        )
        assert answer.status_code < 300, answer.text

        async def started() -> bool:
            return (await mqtt_status(agent))["broker"] == "mqtts://broker.test:8883"

        # The fake cloud's broker (broker.test) does not resolve: MQTT runs and keeps trying.
        await agent.until(started, "MQTT did not start after provisioning")
        answer = await agent.client.post("/v1/deprovision")
        assert answer.status_code < 300, answer.text

        async def stopped() -> bool:
            return (await mqtt_status(agent))["state"] == "not configured"

        await agent.until(stopped, "MQTT did not stop on deprovisioning")
    finally:
        await agent.stop()


async def test_an_agent_without_mqtt_never_imports_it(tmp_path: Path) -> None:
    agent = Agent(tmp_path, CLOUD_API_ENDPOINT="http://127.0.0.1:9")
    try:
        await agent.start()
        assert (await mqtt_status(agent))["state"] == "not configured"
    finally:
        stderr = await agent.stop()
    assert imported(stderr, "iotistic_agent.mqtt.link")
    # Nor its manager, nor cloud sync: an agent that is not provisioned loads neither.
    assert not imported(stderr, "iotistic_agent.mqtt.manager")
    assert not imported(stderr, "iotistic_agent.cloud.sync")
    assert not imported(stderr, "aiomqtt") and not imported(stderr, "paho")

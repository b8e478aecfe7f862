"""POST /v1/sensors/{metric} with a real broker: a local service's reading is published on
the device's sensor topic over the agent's own connection, and bad input is a clear 400."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from aiohttp.test_utils import TestServer
from api_support import KEY, api_context
from iotistic_agent.device_api.app import create_app
from iotistic_agent.engine.memory import MemoryEngine
from iotistic_agent.mqtt.credentials import MqttCredentials
from iotistic_agent.mqtt.link import MqttLink, not_configured
from iotistic_agent.mqtt.manager import MqttManager
from iotistic_agent.while_provisioned import WhileProvisioned
from test_mqtt_broker import connected, device, watching

from tests.integration.waiting import wait_for_async
from tests.support.mosquitto import MosquittoBroker, mosquitto_or_fail

READING = {"timestamp": "2026-11-25T10:30:00Z", "value": 23.5, "unit": "C", "sensor_id": "b1"}


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[MosquittoBroker]:
    with mosquitto_or_fail(tmp_path / "mosquitto", "the sensor route tests") as started:
        yield started


@dataclasses.dataclass
class Setup:
    client: httpx.AsyncClient
    service: WhileProvisioned[MqttCredentials, MqttManager]


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Setup]:
    service = WhileProvisioned("MQTT", MqttManager, not_configured)
    context = dataclasses.replace(api_context(tmp_path, MemoryEngine()), mqtt=MqttLink(service))
    async with TestServer(create_app(context, api_key=KEY), host="127.0.0.1") as server:
        headers = {"Authorization": f"Bearer {KEY}"}
        base = str(server.make_url(""))
        async with httpx.AsyncClient(base_url=base, headers=headers, timeout=10) as client:
            yield Setup(client, service)
    await service.stop()


async def test_a_reading_is_published_on_the_devices_sensor_topic(
    api: Setup, broker: MosquittoBroker
) -> None:
    creds = device(broker)
    api.service.start(creds)
    manager = api.service.current
    assert manager is not None
    await connected(manager)
    topic = f"sensor/{creds.uuid}/temperature"
    async with watching(broker, topic) as received:
        answer = await api.client.post("/v1/sensors/temperature", json=READING)
        assert answer.status_code == 202, answer.text
        assert answer.json() == {"status": "published", "topic": topic}
        await wait_for_async(lambda: received, 5, 0.01, "the reading never arrived")
    assert json.loads(received[0]) == READING


@pytest.mark.parametrize(
    ("path", "body", "message"),
    [
        ("/v1/sensors/temp%2Fx", READING, "metric must be"),
        ("/v1/sensors/temperature", {**READING, "value": "hot"}, "value"),
        ("/v1/sensors/temperature", {**READING, "extra": 1}, "extra"),
        ("/v1/sensors/temperature", {**READING, "timestamp": "yesterday"}, "timestamp"),
    ],
)
async def test_bad_input_is_a_clear_400(
    api: Setup, path: str, body: dict[str, object], message: str
) -> None:
    answer = await api.client.post(path, json=body)
    assert answer.status_code == 400 and message in answer.text, answer.text


async def test_without_mqtt_the_route_says_why(api: Setup) -> None:
    answer = await api.client.post("/v1/sensors/temperature", json=READING)
    assert answer.status_code == 409
    assert "MQTT is not configured" in answer.json()["message"]



async def test_without_a_broker_the_reading_feeds_the_local_detector(tmp_path: Path) -> None:
    from iotistic_agent.anomaly.pipeline import AnomalyPipeline
    from iotistic_agent.anomaly.service import AnomalyDetectionService
    from iotistic_agent.store.anomaly_store import AnomalyStore

    base_context = api_context(tmp_path, MemoryEngine())
    pipeline = AnomalyPipeline(
        AnomalyDetectionService(), AnomalyStore(base_context.database), tmp_path
    )
    context = dataclasses.replace(base_context, anomalies=pipeline)
    async with TestServer(create_app(context, api_key=KEY), host="127.0.0.1") as server:
        headers = {"Authorization": f"Bearer {KEY}"}
        async with httpx.AsyncClient(base_url=str(server.make_url("")), headers=headers) as c:
            answer = await c.post("/v1/sensors/temperature", json=READING)
    assert answer.status_code == 202
    assert answer.json() == {"status": "local", "topic": None}
    assert pipeline.service.series_count == 1

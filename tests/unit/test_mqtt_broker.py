"""MqttManager against a real Mosquitto (plain and TLS listeners, dynamic-security ACLs per
device, tests/support/mosquitto.py). No Docker needed. Every wait is on a condition."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import aiomqtt
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from iotistic_agent.backoff import Backoff
from iotistic_agent.cloud.client import PUBLISHED, SyncClient
from iotistic_agent.cloud.reporter import StateReporter
from iotistic_agent.cloud.retry import ConnectionMonitor, RetryGate, RetryPolicy
from iotistic_agent.mqtt.credentials import BrokerSettings, MqttCredentials
from iotistic_agent.mqtt.link import MqttLink, not_configured
from iotistic_agent.mqtt.manager import MqttManager
from iotistic_agent.store.db import open_database
from iotistic_agent.store.device import CloudCredentials
from iotistic_agent.store.sync_store import SyncStore
from iotistic_agent.while_provisioned import WhileProvisioned
from iotistic_contracts.mqtt import (
    STATE_TOPIC_FILTER,
    SensorReading,
    sensor_topic,
    state_topic,
    update_topic,
)

from tests.integration.waiting import wait_for_async
from tests.support.certs import CertificateAuthority
from tests.support.mosquitto import MosquittoBroker, mosquitto_or_fail

WAIT_S = 20
FAST = Backoff(base_s=0.2, max_s=1.0)
READING = {"timestamp": "2026-11-25T12:00:00Z", "value": 21.5, "unit": "C", "sensor_id": "t1"}


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[MosquittoBroker]:
    with mosquitto_or_fail(tmp_path / "mosquitto", "the agent's MQTT tests") as running:
        yield running


def device(
    broker: MosquittoBroker, tls: bool = False, ca_cert: str | None = None
) -> MqttCredentials:
    device_uuid = str(uuid.uuid4())
    password = broker.add_device(device_uuid)
    return MqttCredentials(
        uuid=device_uuid,
        username=f"device_{device_uuid}",
        password=password,
        broker=BrokerSettings(
            broker.host,
            broker.tls_port if tls else broker.plain_port,
            tls,
            (ca_cert or broker.ca_cert_pem) if tls else None,
        ),
    )


@contextlib.asynccontextmanager
async def running(manager: MqttManager) -> AsyncIterator[MqttManager]:
    task = asyncio.create_task(manager.run())
    try:
        yield manager
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        assert manager.status()["state"] == "disconnected"


async def connected(manager: MqttManager, reconnects: int = 0) -> None:
    def ready() -> bool:
        status = manager.status()
        return status["state"] == "connected" and status["reconnects"] >= reconnects

    await wait_for_async(ready, WAIT_S, 0.02, f"MQTT did not connect: {manager.status()}")


@contextlib.asynccontextmanager
async def client(
    broker: MosquittoBroker, username: str, password: str, **options: Any
) -> AsyncIterator[aiomqtt.Client]:
    async with aiomqtt.Client(
        broker.host, broker.plain_port, username=username, password=password, **options
    ) as mqtt:
        yield mqtt


def admin(broker: MosquittoBroker) -> Any:
    return client(broker, broker.admin_username, broker.admin_password)


@contextlib.asynccontextmanager
async def watching(broker: MosquittoBroker, topic: str) -> AsyncIterator[list[bytes]]:
    """The cloud's view: the admin user subscribed to ``topic``; payloads collect in a list."""
    async with admin(broker) as mqtt:
        await mqtt.subscribe(topic, qos=1)
        async with collecting(mqtt) as received:
            yield received


@contextlib.asynccontextmanager
async def collecting(mqtt: aiomqtt.Client) -> AsyncIterator[list[bytes]]:
    """Every payload the client receives, appended to a list while the block runs."""
    received: list[bytes] = []

    async def collect() -> None:
        async for message in mqtt.messages:
            assert isinstance(message.payload, bytes)
            received.append(message.payload)

    task = asyncio.create_task(collect())
    try:
        yield received
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


# --- connecting --------------------------------------------------------------------------------


@pytest.mark.parametrize("tls", [False, True], ids=["mqtt", "mqtts"])
async def test_connects_with_the_device_login(broker: MosquittoBroker, tls: bool) -> None:
    creds = device(broker, tls)
    async with running(MqttManager(creds, backoff=FAST)) as manager:
        await connected(manager)
        status = manager.status()
        assert status["broker"] == f"{'mqtts' if tls else 'mqtt'}://127.0.0.1:" + str(
            broker.tls_port if tls else broker.plain_port
        )
        assert status["lastError"] is None and status["reconnects"] == 0
    assert f"device_{creds.uuid}" in broker.log()  # the client id is device_<uuid>


async def test_a_wrong_ca_is_a_clear_error(broker: MosquittoBroker) -> None:
    other_ca = CertificateAuthority.create("Not the broker's CA").cert_pem
    async with running(MqttManager(device(broker, True, other_ca), backoff=FAST)) as manager:
        await wait_for_async(lambda: manager.status()["lastError"], WAIT_S, 0.02)
        status = manager.status()
        assert status["state"] != "connected"
        assert status["lastError"].startswith("TLS certificate verification failed")


async def test_a_wrong_password_is_a_clear_error(broker: MosquittoBroker) -> None:
    creds = device(broker)
    wrong = MqttCredentials(creds.uuid, creds.username, "wrong", creds.broker)
    async with running(MqttManager(wrong, backoff=FAST)) as manager:
        await wait_for_async(lambda: manager.status()["lastError"], WAIT_S, 0.02)
        assert "authori" in manager.status()["lastError"].lower()


# --- incoming ----------------------------------------------------------------------------------


async def test_the_update_trigger_calls_back(broker: MosquittoBroker) -> None:
    creds = device(broker)
    triggered = asyncio.Event()
    async with running(MqttManager(creds, on_update=triggered.set, backoff=FAST)) as manager:
        await connected(manager)
        async with admin(broker) as cloud:  # the cloud's user may publish agent/+/update
            await cloud.publish(update_topic(creds.uuid), b"", qos=1)
        await asyncio.wait_for(triggered.wait(), WAIT_S)
        assert manager.status()["updatesReceived"] == 1


async def test_sensor_readings_arrive_and_garbage_does_not_crash(broker: MosquittoBroker) -> None:
    creds = device(broker)
    readings: list[tuple[SensorReading, str]] = []
    manager = MqttManager(creds, on_reading=lambda r, m: readings.append((r, m)), backoff=FAST)
    async with running(manager):
        await connected(manager)
        # A local service on the device with a login of its own (a device's login is pinned
        # to the device's client id) and the device's role.
        broker.add_client("sensor-svc", "svc-password", creds.username)
        async with client(broker, "sensor-svc", "svc-password", identifier="sensor-svc") as svc:
            topic = sensor_topic(creds.uuid, "temperature")
            await svc.publish(topic, json.dumps(READING), qos=1)
            for garbage in (b"\x00\xff", b"{}", b'{"value": "hot"}'):
                await svc.publish(topic, garbage, qos=1)
            await svc.publish(sensor_topic(creds.uuid, "room/humidity"), json.dumps(READING), qos=1)
        await wait_for_async(lambda: len(readings) == 2, WAIT_S, 0.02)
        assert [metric for _, metric in readings] == ["temperature", "room/humidity"]
        status = manager.status()
        assert status["state"] == "connected" and status["invalidReadings"] == 3


async def test_publishing_while_connected_goes_straight_out_in_order(
    broker: MosquittoBroker,
) -> None:
    creds = device(broker)
    async with running(MqttManager(creds, backoff=FAST)) as manager:
        await connected(manager)
        async with watching(broker, f"sensor/{creds.uuid}/#") as seen:
            for value in range(3):
                await manager.publish(sensor_topic(creds.uuid, "t"), str(value), qos=1)
            await wait_for_async(lambda: len(seen) == 3, WAIT_S, 0.02)
        assert seen == [b"0", b"1", b"2"]
        assert manager.status()["queued"] == 0


# --- reconnecting ------------------------------------------------------------------------------


async def test_after_a_broker_restart_it_reconnects_and_subscribes_again(
    broker: MosquittoBroker,
) -> None:
    creds = device(broker)
    triggered = asyncio.Event()
    async with running(MqttManager(creds, on_update=triggered.set, backoff=FAST)) as manager:
        await connected(manager)
        await asyncio.to_thread(broker.restart)
        await connected(manager, reconnects=1)
        async with admin(broker) as cloud:
            await cloud.publish(update_topic(creds.uuid), b"", qos=1)
        await asyncio.wait_for(triggered.wait(), WAIT_S)
        assert manager.status()["lastError"] is None


async def test_messages_published_while_the_broker_is_down_arrive_after_it_returns(
    broker: MosquittoBroker,
) -> None:
    creds = device(broker)
    readings: list[float] = []
    manager = MqttManager(
        creds, on_reading=lambda r, _: readings.append(r.value), backoff=FAST, outbox_max=3
    )
    async with running(manager):
        await connected(manager)
        await asyncio.to_thread(broker.stop)
        await wait_for_async(lambda: not manager.connected, WAIT_S, 0.02)
        for value in range(5):
            payload = json.dumps({**READING, "value": value})
            await manager.publish(sensor_topic(creds.uuid, "t"), payload, qos=1)
        assert manager.status()["queued"] == 3 and manager.status()["dropped"] == 2
        await asyncio.to_thread(broker._launch)  # same ports, CA and users: a broker restart
        await connected(manager, reconnects=1)
        # It subscribes before it flushes, so it receives its own readings, in order.
        await wait_for_async(lambda: len(readings) == 3, WAIT_S, 0.02)
        assert readings == [2.0, 3.0, 4.0]
        assert manager.status()["queued"] == 0


# --- state reports -----------------------------------------------------------------------------


@pytest.fixture
async def http_cloud() -> AsyncIterator[tuple[str, list[dict[str, Any]]]]:
    reports: list[dict[str, Any]] = []

    async def report(request: web.Request) -> web.Response:
        reports.append(json.loads(await request.read()))
        return web.json_response({"status": "accepted"})

    app = web.Application()
    app.router.add_patch("/api/v1/device/state", report)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        yield str(server.make_url("")).rstrip("/"), reports
    finally:
        await server.close()


async def test_reports_go_over_mqtt_while_connected_and_over_http_otherwise(
    broker: MosquittoBroker, tmp_path: Path, http_cloud: tuple[str, list[dict[str, Any]]]
) -> None:
    endpoint, http_reports = http_cloud
    creds = device(broker)
    service = WhileProvisioned("MQTT", lambda c: MqttManager(c, backoff=FAST), not_configured)
    link = MqttLink(service)
    uptime = [0]

    async def collect() -> dict[str, Any]:
        uptime[0] += 10
        return {"targetVersion": 1, "targetApplied": True, "uptime": uptime[0], "apps": {}}

    async with aiohttp.ClientSession() as session:
        sync = SyncClient(session, CloudCredentials(creds.uuid, endpoint, "k", None, True), link)
        reporter = StateReporter(
            sync,
            SyncStore(open_database(tmp_path / "d.sqlite"), 10),
            RetryGate(RetryPolicy(), time.monotonic),
            ConnectionMonitor(),
            collect,
            0,
            300,
        )
        await reporter.report_once()  # MQTT not started: HTTP
        assert [r[creds.uuid]["sequence"] for r in http_reports] == [1]

        service.start(creds)
        try:
            assert service.current is not None
            await connected(service.current)
            async with watching(broker, state_topic(creds.uuid)) as seen:
                await reporter.report_once()
                await wait_for_async(lambda: seen, WAIT_S, 0.02)
            report = json.loads(seen[0])
            assert list(report) == [creds.uuid]  # the same body as the HTTP PATCH
            assert report[creds.uuid]["sequence"] == 2 and report[creds.uuid]["full"] is False
            assert len(http_reports) == 1 and reporter.sent == 2

            await asyncio.to_thread(broker.stop)
            await wait_for_async(lambda: not link.connected, WAIT_S, 0.02)
            await reporter.report_once()  # broker gone: HTTP again
            assert [r[creds.uuid]["sequence"] for r in http_reports] == [1, 3]
        finally:
            await service.stop()
    assert service.status()["state"] == "not configured"


# --- MQTT 5: what the PUBACK says ---------------------------------------------------------------

# How the cloud subscribes (iotistic_cloud.mqtt.link): one shared subscription for its replicas.
CLOUD_STATE_FILTER = f"$share/iotistic-cloud/{STATE_TOPIC_FILTER}"


@contextlib.asynccontextmanager
async def cloud_subscribed(broker: MosquittoBroker) -> AsyncIterator[list[bytes]]:
    """The cloud's user on MQTT 5 with the cloud's shared subscription to every state topic."""
    async with client(
        broker,
        broker.admin_username,
        broker.admin_password,
        protocol=aiomqtt.ProtocolVersion.V5,
    ) as cloud:
        granted = await cloud.subscribe(CLOUD_STATE_FILTER, qos=1)
        assert all(code.value < 0x80 for code in granted)
        async with collecting(cloud) as received:
            yield received


async def test_a_report_nobody_subscribed_to_falls_back_to_http(
    broker: MosquittoBroker, http_cloud: tuple[str, list[dict[str, Any]]]
) -> None:
    endpoint, http_reports = http_cloud
    creds = device(broker)
    async with running(MqttManager(creds, backoff=FAST)) as manager:
        await connected(manager)
        topic = state_topic(creds.uuid)
        # Mosquitto answers PUBACK 0x10 "No matching subscribers": the cloud is not listening.
        assert await manager.publish_confirmed(topic, b'{"x": 1}') is False
        async with aiohttp.ClientSession() as session:
            sync = SyncClient(
                session, CloudCredentials(creds.uuid, endpoint, "k", None, True), manager
            )
            body = json.dumps({creds.uuid: {"sequence": 1}})
            assert await sync.send_report(body) == "accepted"  # the HTTP PATCH's answer
        assert http_reports == [{creds.uuid: {"sequence": 1}}]
        assert manager.status()["state"] == "connected"  # a 0x10 is no connection problem


async def test_a_report_goes_over_mqtt_when_the_cloud_is_subscribed(
    broker: MosquittoBroker, http_cloud: tuple[str, list[dict[str, Any]]]
) -> None:
    endpoint, http_reports = http_cloud
    creds = device(broker)
    async with running(MqttManager(creds, backoff=FAST)) as manager:
        await connected(manager)
        async with cloud_subscribed(broker) as seen, aiohttp.ClientSession() as session:
            sync = SyncClient(
                session, CloudCredentials(creds.uuid, endpoint, "k", None, True), manager
            )
            body = json.dumps({creds.uuid: {"sequence": 7}})
            assert await sync.send_report(body) == PUBLISHED
            await wait_for_async(lambda: seen, WAIT_S, 0.02)
        assert [json.loads(p) for p in seen] == [{creds.uuid: {"sequence": 7}}]
        assert http_reports == []


async def test_a_publish_the_acl_denies_is_reported_as_refused(
    broker: MosquittoBroker, caplog: pytest.LogCaptureFixture
) -> None:
    creds = device(broker)
    other = str(uuid.uuid4())  # another device's state topic: outside this device's ACL
    async with running(MqttManager(creds, backoff=FAST)) as manager:
        await connected(manager)
        async with cloud_subscribed(broker) as seen:
            with caplog.at_level(logging.WARNING, logger="iotistic.mqtt"):
                assert await manager.publish_confirmed(state_topic(other), b"{}") is False
            assert "refused by the broker" in caplog.text and "0x87" in caplog.text
            # The outbox path: a refusal is final, the message is dropped and logged.
            caplog.clear()
            with caplog.at_level(logging.WARNING, logger="iotistic.mqtt"):
                await manager.publish(state_topic(other), b"{}", qos=1)
            assert "message dropped" in caplog.text and manager.status()["queued"] == 0
            # Its own topic still works on the same connection.
            assert await manager.publish_confirmed(state_topic(creds.uuid), b"{}") is True
            await wait_for_async(lambda: seen, WAIT_S, 0.02)
        assert seen == [b"{}"]
        assert manager.status()["state"] == "connected"


async def test_a_refused_subscription_is_a_failed_connection(broker: MosquittoBroker) -> None:
    creds = device(broker)
    name = f"device_{creds.uuid}"
    broker.dynsec(
        [{"command": "removeRoleACL", "rolename": name, "acltype": "subscribePattern",
          "topic": f"agent/{creds.uuid}/#"}]
    )  # fmt: skip
    async with running(MqttManager(creds, backoff=FAST)) as manager:
        await wait_for_async(lambda: manager.status()["lastError"], WAIT_S, 0.02)
        status = manager.status()
        assert status["state"] != "connected"
        assert status["lastError"] == (
            f"the broker refused the subscription to {update_topic(creds.uuid)}"
        )

"""MQTT pieces that need no broker: credentials, TLS context, outbox, routing, reconnect
backoff, and the report transport choice in ``SyncClient``."""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from iotistic_agent.backoff import Backoff
from iotistic_agent.cloud.client import SyncClient
from iotistic_agent.mqtt.credentials import BrokerSettings, MqttCredentials, parse_broker
from iotistic_agent.mqtt.link import MqttLink, mqtt_connection
from iotistic_agent.mqtt.manager import MqttManager
from iotistic_agent.mqtt.outbox import Outbox, Outgoing
from iotistic_agent.mqtt.routing import Router, subscriptions
from iotistic_agent.mqtt.tls import BrokerTlsError, tls_context
from iotistic_agent.store.db import open_database
from iotistic_agent.store.device import CloudCredentials, DeviceStore
from iotistic_contracts.mqtt import SensorReading
from test_provisioning_store import MQTT_PASSWORD, registration

from tests.integration.waiting import wait_for_async
from tests.support.net import free_port

UUID = "5d1c8a70-0000-4000-8000-0000000000aa"
READING = {"timestamp": "2026-11-25T12:00:00Z", "value": 21.5, "unit": "C", "sensor_id": "t1"}


# --- credentials -----------------------------------------------------------------------------


def test_broker_from_stored_config() -> None:
    config = {"protocol": "mqtts", "host": "broker.example", "port": 8884, "useTls": True,
              "caCert": "PEM", "verifyCertificate": False}  # fmt: skip
    broker = parse_broker(json.dumps(config), "mqtt://ignored:1")
    assert broker == BrokerSettings("broker.example", 8884, True, "PEM", False)
    assert broker.url == "mqtts://broker.example:8884"
    assert "PEM" not in repr(broker)


def test_broker_defaults_are_safe() -> None:
    # useTls alone means TLS; verification stays on unless it is an explicit false.
    broker = parse_broker(
        json.dumps({"host": "b", "useTls": True, "verifyCertificate": None}), None
    )
    assert broker == BrokerSettings("b", 8883, True, None, True)
    assert parse_broker(json.dumps({"protocol": "mqtt", "host": "b"}), None) == BrokerSettings(
        "b", 1883, False
    )


@pytest.mark.parametrize(
    ("config", "url", "expected"),
    [
        (None, "mqtts://broker:9000", BrokerSettings("broker", 9000, True)),
        ("not json", "mqtt://broker", BrokerSettings("broker", 1883, False)),
        ("[]", None, None),
        (None, "http://broker:80", None),
        (None, "mqtt://broker:99999", None),
        (json.dumps({"host": " "}), "", None),
    ],
)
def test_broker_from_url_or_nothing(
    config: str | None, url: str | None, expected: BrokerSettings | None
) -> None:
    assert parse_broker(config, url) == expected


def test_store_has_mqtt_credentials_only_while_provisioned(tmp_path: Path) -> None:
    devices = DeviceStore(open_database(tmp_path / "device.sqlite"))
    identity = devices.ensure_identity("pi")
    assert devices.mqtt_credentials() is None
    devices.save_registration(registration(mqtt_username=f"device_{identity.uuid}"))
    creds = devices.mqtt_credentials()
    assert creds is not None
    assert creds.uuid == identity.uuid
    assert creds.client_id == creds.username == f"device_{identity.uuid}"
    assert creds.password == MQTT_PASSWORD
    assert MQTT_PASSWORD not in repr(creds)
    assert creds.broker == BrokerSettings("broker", 8883, True)
    devices.mark_deprovisioned(1_764_000_100)
    assert devices.mqtt_credentials() is None


def test_store_without_a_broker_has_no_mqtt_credentials(tmp_path: Path) -> None:
    devices = DeviceStore(open_database(tmp_path / "device.sqlite"))
    devices.ensure_identity("pi")
    devices.save_registration(registration(mqtt_broker_url="", mqtt_broker_config={}))
    assert devices.mqtt_credentials() is None


# --- TLS -------------------------------------------------------------------------------------


def test_plain_mqtt_has_no_tls_context() -> None:
    assert tls_context(BrokerSettings("b", 1883, False)) is None


def test_tls_context_verifies_by_default() -> None:
    context = tls_context(BrokerSettings("b", 8883, True))
    assert context is not None
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname


def test_tls_context_trusts_only_the_given_ca() -> None:
    from tests.support.certs import CertificateAuthority

    ca = CertificateAuthority.create("unit test CA")
    context = tls_context(BrokerSettings("b", 8883, True, ca.cert_pem))
    assert context is not None
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert [c["subject"] for c in context.get_ca_certs()] == [((("commonName", "unit test CA"),),)]


def test_tls_verification_off_only_when_asked() -> None:
    context = tls_context(BrokerSettings("b", 8883, True, None, verify_certificate=False))
    assert context is not None
    assert context.verify_mode == ssl.CERT_NONE and not context.check_hostname


def test_a_ca_that_is_not_pem_is_a_clear_error() -> None:
    with pytest.raises(BrokerTlsError, match="CA certificate cannot be loaded"):
        tls_context(BrokerSettings("b", 8883, True, "-----BEGIN CERTIFICATE-----\nxx\n"))


# --- outbox ----------------------------------------------------------------------------------


def test_outbox_keeps_order_and_drops_the_oldest(caplog: pytest.LogCaptureFixture) -> None:
    outbox = Outbox(3)
    with caplog.at_level(logging.WARNING, "iotistic.mqtt"):
        for i in range(250):
            outbox.append(Outgoing("t", str(i).encode(), 0))
    assert len(outbox) == 3 and outbox.dropped == 247
    delivered = []
    while (message := outbox.peek()) is not None:
        delivered.append(message.payload)
        outbox.pop()
    assert delivered == [b"247", b"248", b"249"]
    # One warning at the first drop, then one per 100 drops; not one per message.
    assert len([r for r in caplog.records if "outbox full" in r.message]) == 3


def test_outbox_needs_room() -> None:
    with pytest.raises(ValueError, match="at least one"):
        Outbox(0)


# --- routing ---------------------------------------------------------------------------------


class Calls:
    def __init__(self) -> None:
        self.updates = 0
        self.readings: list[tuple[SensorReading, str]] = []

    def update(self) -> None:
        self.updates += 1

    def reading(self, reading: SensorReading, metric: str) -> None:
        self.readings.append((reading, metric))


def test_subscriptions_cover_the_update_topic_and_the_sensor_tree() -> None:
    assert subscriptions(UUID) == [(f"agent/{UUID}/update", 1), (f"sensor/{UUID}/#", 0)]


def test_router_dispatches_updates_and_readings() -> None:
    calls = Calls()
    router = Router(UUID, calls.update, calls.reading)
    router.dispatch(f"agent/{UUID}/update", b"anything")
    router.dispatch(f"sensor/{UUID}/temperature", json.dumps(READING).encode())
    router.dispatch(f"sensor/{UUID}/room/humidity", json.dumps(READING).encode())
    router.dispatch("agent/other-device/update", b"")
    assert calls.updates == 1
    assert [metric for _, metric in calls.readings] == ["temperature", "room/humidity"]
    assert calls.readings[0][0].value == 21.5
    assert (router.updates, router.readings, router.invalid) == (1, 2, 0)


def test_garbage_is_logged_once_per_topic(caplog: pytest.LogCaptureFixture) -> None:
    calls = Calls()
    router = Router(UUID, calls.update, calls.reading)
    with caplog.at_level(logging.WARNING, "iotistic.mqtt"):
        for payload in (b"\xff\xfe", b"{}", b"[1]", json.dumps({**READING, "extra": 1}).encode()):
            router.dispatch(f"sensor/{UUID}/temperature", payload)
        router.dispatch(f"sensor/{UUID}/pressure", b"nope")
    assert calls.readings == [] and router.invalid == 5
    warnings = [r.message for r in caplog.records if "invalid sensor reading" in r.message]
    assert len(warnings) == 2
    assert "temperature" in warnings[0] and "pressure" in warnings[1]


def test_a_failing_callback_does_not_escape(caplog: pytest.LogCaptureFixture) -> None:
    def boom(*_: object) -> None:
        raise RuntimeError("callback bug")

    router = Router(UUID, boom, boom)
    router.dispatch(f"agent/{UUID}/update", b"")
    router.dispatch(f"sensor/{UUID}/t", json.dumps(READING).encode())
    assert sum("callback failed" in r.message for r in caplog.records) == 2


# --- manager without a broker -----------------------------------------------------------------


def creds(port: int, host: str = "127.0.0.1", **broker: Any) -> MqttCredentials:
    return MqttCredentials(
        uuid=UUID,
        username=f"device_{UUID}",
        password="pw",
        broker=BrokerSettings(host, port, **({"tls": False} | broker)),
    )


async def test_unconfigured_manager_and_link_report_not_configured() -> None:
    manager = MqttManager(None)
    await manager.run()  # returns at once: nothing to connect to
    assert manager.status()["state"] == "not configured"
    link = MqttLink(mqtt_connection(lambda: None, lambda reading, metric: None))
    assert link.status()["state"] == "not configured" and not link.connected
    assert await link.publish_confirmed("t", b"x") is False


async def test_reconnect_backs_off_exponentially_and_never_raises() -> None:
    delays: list[float] = []

    class Recording(Backoff):
        def delay(self, failures: int, rand: Any = None) -> float:
            value = super().delay(failures)
            delays.append(value)
            return value

    recording = Recording(base_s=0.01, max_s=0.04, jitter=0.0)
    manager = MqttManager(creds(free_port()), backoff=recording)
    task = asyncio.create_task(manager.run())
    try:
        await wait_for_async(lambda: len(delays) >= 5, 10, 0.01, "no reconnect attempts")
        status = manager.status()
        assert status["state"] in ("disconnected", "connecting")
        assert status["lastError"] and "refused" in status["lastError"].lower()
        assert status["broker"].startswith("mqtt://127.0.0.1:")
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert delays[:4] == [0.01, 0.02, 0.04, 0.04]
    assert manager.status()["state"] == "disconnected"


async def test_publish_while_disconnected_is_queued_and_bounded() -> None:
    manager = MqttManager(creds(free_port()), outbox_max=2)
    for i in range(5):
        await manager.publish(f"sensor/{UUID}/t", str(i), qos=1)
    assert manager.status()["queued"] == 2 and manager.status()["dropped"] == 3
    assert await manager.publish_confirmed(f"iot/device/{UUID}/state", b"{}") is False


async def test_a_bad_ca_is_reported_in_status() -> None:
    manager = MqttManager(
        creds(free_port(), tls=True, ca_cert="not a certificate"),
        backoff=Backoff(base_s=5, max_s=5),
    )
    task = asyncio.create_task(manager.run())
    try:
        await wait_for_async(lambda: manager.status()["lastError"], 5, 0.01)
        assert "CA certificate cannot be loaded" in manager.status()["lastError"]
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


# --- report transport ------------------------------------------------------------------------


class FakePublisher:
    def __init__(self, connected: bool, succeeds: bool) -> None:
        self.connected = connected
        self.succeeds = succeeds
        self.published: list[tuple[str, bytes, int]] = []

    async def publish_confirmed(self, topic: str, payload: bytes, qos: int = 1) -> bool:
        self.published.append((topic, payload, qos))
        return self.succeeds


@pytest.fixture
async def http_cloud() -> AsyncIterator[tuple[str, list[bytes]]]:
    bodies: list[bytes] = []

    async def report(request: web.Request) -> web.Response:
        bodies.append(await request.read())
        return web.json_response({"status": "accepted"})

    app = web.Application()
    app.router.add_patch("/api/v1/device/state", report)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        yield str(server.make_url("")).rstrip("/"), bodies
    finally:
        await server.close()


@pytest.mark.parametrize(
    ("connected", "succeeds", "expected"),
    [(True, True, "published"), (True, False, "accepted"), (False, True, "accepted")],
)
async def test_reports_go_over_mqtt_when_connected_else_http(
    http_cloud: tuple[str, list[bytes]], connected: bool, succeeds: bool, expected: str
) -> None:
    endpoint, bodies = http_cloud
    publisher = FakePublisher(connected, succeeds)
    body = json.dumps({UUID: {"full": True, "sequence": 1}})
    cloud_creds = CloudCredentials(UUID, endpoint, "key", None, True)
    async with aiohttp.ClientSession() as session:
        status = await SyncClient(session, cloud_creds, publisher).send_report(body)
    assert status == expected
    if connected:
        assert publisher.published == [(f"iot/device/{UUID}/state", body.encode(), 1)]
    else:
        assert publisher.published == []
    assert bodies == ([] if expected == "published" else [body.encode()])


# --- where the status shows --------------------------------------------------------------------


def test_diagnostics_reads_the_mqtt_status() -> None:
    from iotistic_agent.diagnostics import _mqtt

    assert _mqtt(None)["status"] == "not configured"
    assert _mqtt({"state": "not configured"})["status"] == "not configured"
    ok = _mqtt({"state": "connected", "broker": "mqtts://b:8883"})
    assert ok == {"name": "mqtt", "status": "ok", "message": "connected to mqtts://b:8883"}
    failing = _mqtt({"state": "disconnected", "broker": "mqtts://b:8883", "lastError": "TLS x"})
    assert failing["status"] == "fail" and failing["message"] == "mqtts://b:8883: TLS x"


@pytest.mark.parametrize(
    ("mqtt", "line"),
    [
        ({"state": "not configured", "broker": None}, "not configured"),
        (
            {"state": "connected", "broker": "mqtt://b:1883", "queued": 0},
            "connected (mqtt://b:1883)",
        ),
        (
            {
                "state": "disconnected",
                "broker": "mqtt://b:1883",
                "lastError": "refused",
                "queued": 4,
            },
            "disconnected (mqtt://b:1883): refused, 4 queued",
        ),
    ],
)
def test_iotctl_status_shows_the_mqtt_connection(mqtt: dict[str, Any], line: str) -> None:
    from iotctl.formatting import status_pairs

    assert dict(status_pairs({"mqtt": mqtt}, "http://127.0.0.1:48484"))["MQTT"] == line

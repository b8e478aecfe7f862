"""The cloud with a real Mosquitto (tests/support/mosquitto.py): device accounts created and
deleted through the dynamic-security plugin, devices kept inside their own topics, state
reports over MQTT, update triggers. SQLite only: nothing here depends on the backend.

The broker starts with ``cloud_acls=False`` (just ``mosquitto_ctrl dynsec init``), so the
cloud's own setup at connect (deny by default, its publish right on ``agent/+/update``) is
what these tests rely on.
"""

from __future__ import annotations

import asyncio
import json
import os
import ssl
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiomqtt
import httpx
import pytest
from fastapi import FastAPI
from iotistic_cloud.api.app import create_app
from iotistic_cloud.composition import Cloud
from iotistic_cloud.db.engine import Database
from iotistic_cloud.db.migrate import upgrade
from iotistic_cloud.db.models import Device
from iotistic_cloud.settings import Settings, mqtt_admin, mqtt_broker
from iotistic_cloud.settings import database_url as async_url
from iotistic_contracts.mqtt import device_username, sensor_topic, state_topic, update_topic
from iotistic_contracts.provisioning import RegistrationData
from sqlalchemy import event
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from tests.cloud.conftest import make_settings
from tests.cloud.device_kit import (
    ADMIN,
    SimDevice,
    create_key,
    exchanged,
    new_uuid,
    provision,
    register,
    report,
    sealed_registration,
    target,
)
from tests.integration.waiting import wait_for, wait_for_async
from tests.support.certs import CertificateAuthority
from tests.support.cloud_process import CloudProcess
from tests.support.mosquitto import MosquittoBroker, mosquitto_or_fail
from tests.support.net import free_port

WAIT_S = 10
CLOUD = Path(sys.executable).with_name("iotistic-cloud")


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MosquittoBroker]:
    work = tmp_path_factory.mktemp("mosquitto")
    with mosquitto_or_fail(work, "the cloud's MQTT tests", cloud_acls=False) as running:
        yield running


@pytest.fixture(scope="module")
async def sqlite_db(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Database]:
    database = Database(async_url(f"sqlite:///{tmp_path_factory.mktemp('db') / 'c.sqlite'}"))
    await upgrade(database.engine)
    try:
        yield database
    finally:
        await database.dispose()


def broker_settings(
    data_dir: Path, database: Database, broker: MosquittoBroker, *, admin_tls: bool
) -> Settings:
    ca_file = data_dir / "broker-ca.pem"
    ca_file.write_text(broker.ca_cert_pem)
    return make_settings(
        data_dir,
        database.url,
        mqtt=mqtt_broker(broker.url(tls=True), str(ca_file)),
        mqtt_admin=mqtt_admin(
            broker.url(tls=admin_tls),
            broker.admin_password,
            ca_cert_file=str(ca_file) if admin_tls else None,
        ),
    )


@asynccontextmanager
async def running_cloud(settings: Settings, database: Database) -> AsyncIterator[FastAPI]:
    """The app with its lifespan (the MQTT link's background task), connected."""
    app = create_app(settings, database=database, migrate_on_start=False)
    async with app.router.lifespan_context(app):
        cloud: Cloud = app.state.cloud
        assert cloud.mqtt is not None
        await asyncio.wait_for(cloud.mqtt.connected.wait(), WAIT_S)
        yield app


@pytest.fixture(scope="module")
async def app(
    tmp_path_factory: pytest.TempPathFactory, sqlite_db: Database, broker: MosquittoBroker
) -> AsyncIterator[FastAPI]:
    settings = broker_settings(tmp_path_factory.mktemp("cloud"), sqlite_db, broker, admin_tls=True)
    async with running_cloud(settings, sqlite_db) as running:
        yield running


@asynccontextmanager
async def http(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://cloud.test") as client:
        yield client


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with http(app) as client:
        yield client


@pytest.fixture(scope="module")
async def key(app: FastAPI) -> str:
    async with http(app) as client:
        return await create_key(client, fleet="mqtt")


def device_tls(device: SimDevice) -> ssl.SSLContext:
    config = device.registration.mqtt.brokerConfig
    assert config.caCert is not None
    return ssl.create_default_context(cadata=config.caCert)


def mqtt_client(device: SimDevice, **options: Any) -> aiomqtt.Client:
    """The device's connection, built only from what registration returned; its client id
    is its username, as the agent's (the only one its account may use)."""
    config = device.registration.mqtt.brokerConfig
    options.setdefault("tls_context", device_tls(device) if config.useTls else None)
    options.setdefault("identifier", device.registration.mqtt.username)
    return aiomqtt.Client(
        config.host,
        config.port,
        username=device.registration.mqtt.username,
        password=device.mqtt_password,
        protocol=aiomqtt.ProtocolVersion.V5,
        timeout=WAIT_S,
        **options,
    )


async def next_message(client: aiomqtt.Client) -> aiomqtt.Message:
    async with asyncio.timeout(WAIT_S):
        async for message in client.messages:
            return message
    raise AssertionError("no message")


async def reports_of(client: httpx.AsyncClient, device_uuid: str) -> list[dict[str, Any]]:
    answer = await client.get(f"/api/admin/v1/devices/{device_uuid}/reports", headers=ADMIN)
    assert answer.status_code == 200, answer.text
    body: list[dict[str, Any]] = answer.json()
    return body


async def test_registration_returns_tls_broker_config(
    client: httpx.AsyncClient, key: str, broker: MosquittoBroker
) -> None:
    device = await provision(client, key)
    mqtt = device.registration.mqtt
    assert mqtt.username == device_username(device.uuid)
    config = mqtt.brokerConfig
    assert (config.protocol, config.host, config.port) == ("mqtts", broker.host, broker.tls_port)
    assert config.useTls and config.verifyCertificate
    assert config.caCert == broker.ca_cert_pem


async def test_device_connects_over_tls_with_what_registration_returned(
    client: httpx.AsyncClient, key: str
) -> None:
    device = await provision(client, key)
    async with mqtt_client(device) as mqtt:
        await mqtt.subscribe(update_topic(device.uuid), qos=1)
        await mqtt.publish(sensor_topic(device.uuid, "temperature"), b"{}", qos=1)


async def test_wrong_ca_is_refused_with_a_tls_error(client: httpx.AsyncClient, key: str) -> None:
    device = await provision(client, key)
    other_ca = ssl.create_default_context(cadata=CertificateAuthority.create("Other CA").cert_pem)
    with pytest.raises(aiomqtt.MqttError, match="CERTIFICATE_VERIFY_FAILED"):
        async with mqtt_client(device, tls_context=other_ca):
            pass


async def test_wrong_password_is_refused(client: httpx.AsyncClient, key: str) -> None:
    device = await provision(client, key)
    device.mqtt_password = "not-the-password"
    with pytest.raises(aiomqtt.MqttError):
        async with mqtt_client(device):
            pass


async def test_device_stays_inside_its_own_topics(client: httpx.AsyncClient, key: str) -> None:
    a, b = await provision(client, key), await provision(client, key)
    async with mqtt_client(a) as mqtt_a, mqtt_client(b) as mqtt_b:
        # Subscribing to another device's topics: refused with "not authorized" (0x87).
        for topic in (update_topic(b.uuid), state_topic(b.uuid), "#", "agent/+/update"):
            granted = await mqtt_a.subscribe(topic, qos=1)
            assert [code if isinstance(code, int) else code.value for code in granted] == [0x87]
        await mqtt_b.subscribe(f"sensor/{b.uuid}/#", qos=1)
        # Publishing into b's topics: PUBACK "Not authorized" (aiomqtt does not raise on it),
        # and never delivered.
        await mqtt_a.publish(sensor_topic(b.uuid, "temperature"), b"from a", qos=1)
        await mqtt_a.publish(update_topic(b.uuid), b"from a", qos=1)
        await mqtt_b.publish(sensor_topic(b.uuid, "sentinel"), b"from b", qos=1)
        first = await next_message(mqtt_b)
        assert (first.topic.value, first.payload) == (sensor_topic(b.uuid, "sentinel"), b"from b")
        # And a state report published by a into b's state topic never reaches the cloud.
        await mqtt_a.publish(state_topic(b.uuid), json.dumps(report(b.uuid, 1)), qos=1)
        await mqtt_b.publish(state_topic(b.uuid), json.dumps(report(b.uuid, 2)), qos=1)
        stored = await wait_for_async(
            lambda: reports_of(client, b.uuid), WAIT_S, 0.05, "b's report was not stored"
        )
        assert [r["sequence"] for r in stored] == [2]


async def test_state_report_over_mqtt_is_stored(client: httpx.AsyncClient, key: str) -> None:
    device = await provision(client, key)
    async with mqtt_client(device) as mqtt:
        # Keyed by another uuid: dropped (logged), even on the device's own topic.
        await mqtt.publish(state_topic(device.uuid), json.dumps(report(new_uuid(), 1)), qos=1)
        await mqtt.publish(state_topic(device.uuid), b"not json", qos=1)
        body = report(device.uuid, 7, full=True, cpu_usage=12.5)
        await mqtt.publish(state_topic(device.uuid), json.dumps(body), qos=1)
    stored = await wait_for_async(
        lambda: reports_of(client, device.uuid), WAIT_S, 0.05, "report was not stored"
    )
    assert [(r["sequence"], r["full"]) for r in stored] == [(7, True)]
    shown = await client.get(f"/api/admin/v1/devices/{device.uuid}", headers=ADMIN)
    assert shown.json()["reportedState"]["cpu_usage"] == 12.5


async def test_set_target_publishes_the_update_trigger(client: httpx.AsyncClient, key: str) -> None:
    device = await provision(client, key)
    async with mqtt_client(device) as mqtt:
        await mqtt.subscribe(update_topic(device.uuid), qos=1)
        path = f"/api/admin/v1/devices/{device.uuid}/target"
        answer = await client.put(path, json=target((1, "web", "nginx:1")), headers=ADMIN)
        assert answer.status_code == 200, answer.text
        message = await next_message(mqtt)
        assert message.topic.value == update_topic(device.uuid)
        assert isinstance(message.payload, bytes)
        assert json.loads(message.payload) == {"version": 1}


async def expect_disconnect(mqtt: aiomqtt.Client) -> None:
    with pytest.raises(aiomqtt.MqttError):
        async with asyncio.timeout(WAIT_S):
            async for _ in mqtt.messages:
                pass


@pytest.mark.parametrize("by", ["admin", "device"])
async def test_deleted_device_is_disconnected_and_locked_out(
    client: httpx.AsyncClient, key: str, by: str
) -> None:
    device = await provision(client, key)
    async with mqtt_client(device) as mqtt:
        await mqtt.subscribe(update_topic(device.uuid), qos=1)
        if by == "admin":
            answer = await client.delete(f"/api/admin/v1/devices/{device.uuid}", headers=ADMIN)
        else:
            answer = await client.delete(f"/api/v1/device/{device.uuid}", headers=device.auth)
        assert answer.status_code == 204, answer.text
        await expect_disconnect(mqtt)
    with pytest.raises(aiomqtt.MqttError, match=r"[Nn]ot authori[sz]ed|[Bb]ad user"):
        async with mqtt_client(device):
            pass


async def test_broker_down_fails_registration_and_stores_nothing(
    tmp_path: Path, sqlite_db: Database, broker: MosquittoBroker
) -> None:
    settings = broker_settings(tmp_path, sqlite_db, broker, admin_tls=False)
    dead = mqtt_admin(f"mqtt://127.0.0.1:{free_port()}", "x")
    settings = make_settings(tmp_path, sqlite_db.url, mqtt=settings.mqtt, mqtt_admin=dead)
    # No lifespan: each broker call opens its own connection (as in the CLI).
    app = create_app(settings, database=sqlite_db, migrate_on_start=False)
    async with http(app) as client:
        key = await create_key(client, fleet="down")
        device_uuid = new_uuid()
        exchange = await exchanged(client, device_uuid, key)
        data = RegistrationData(deviceUuid=device_uuid, provisioningApiKey=key)
        answer = await register(
            client, device_uuid, exchange.keyId, sealed_registration(exchange, data)
        )
        assert answer.status_code == 503, answer.text
        assert answer.json() == {"error": "MQTT broker is unavailable"}
        shown = await client.get(f"/api/admin/v1/devices/{device_uuid}", headers=ADMIN)
        assert shown.status_code == 404
        # The exchange was not used up: the device registers once the broker is back.
        back = broker_settings(tmp_path, sqlite_db, broker, admin_tls=False)
        async with http(create_app(back, database=sqlite_db, migrate_on_start=False)) as again:
            answer = await register(
                again, device_uuid, exchange.keyId, sealed_registration(exchange, data)
            )
            assert answer.status_code == 201, answer.text


async def test_link_reconnects_and_resubscribes_after_a_broker_restart(
    tmp_path: Path, sqlite_db: Database
) -> None:
    with MosquittoBroker(tmp_path / "broker", cloud_acls=False) as own_broker:
        settings = broker_settings(tmp_path, sqlite_db, own_broker, admin_tls=False)
        async with running_cloud(settings, sqlite_db) as app, http(app) as client:
            cloud: Cloud = app.state.cloud
            assert cloud.mqtt is not None
            key = await create_key(client, fleet="restart")
            device = await provision(client, key)
            # Its first connection made the cloud's own role (and got it kicked): counted once.
            assert cloud.mqtt.connections == 1
            own_broker.restart()
            await wait_for_async(
                lambda: cloud.mqtt is not None and cloud.mqtt.connections >= 2,
                WAIT_S,
                0.02,
                "the cloud did not reconnect",
            )
            async with mqtt_client(device) as mqtt:
                body = report(device.uuid, 1, full=True)
                await mqtt.publish(state_topic(device.uuid), json.dumps(body), qos=1)
            await wait_for_async(
                lambda: reports_of(client, device.uuid), WAIT_S, 0.05, "report not stored"
            )
            # Broker down while the link runs: registration fails at once with 503.
            own_broker.stop()
            await wait_for_async(
                lambda: cloud.mqtt is not None and not cloud.mqtt.connected.is_set(),
                WAIT_S,
                0.02,
                "the cloud did not notice the broker stopped",
            )
            answer = await client.delete(f"/api/admin/v1/devices/{device.uuid}", headers=ADMIN)
            assert answer.status_code == 503
            assert answer.json() == {"error": "MQTT broker is unavailable"}
            kept = await client.get(f"/api/admin/v1/devices/{device.uuid}", headers=ADMIN)
            assert kept.status_code == 200


def cli_env(database: Database, broker: MosquittoBroker, data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MQTT_", "DATABASE_URL"))}
    ca_file = data_dir / "cli-ca.pem"
    ca_file.write_text(broker.ca_cert_pem)
    env.update(
        CLOUD_DATA_DIR=str(data_dir),
        DATABASE_URL=database.url,
        MQTT_BROKER_URL=broker.url(tls=True),
        MQTT_CA_CERT_FILE=str(ca_file),
        MQTT_ADMIN_URL=broker.url(tls=False),
        MQTT_PASSWORD=broker.admin_password,
    )
    return env


async def run_cli(env: dict[str, str], *args: str) -> str:
    result = await asyncio.to_thread(
        subprocess.run,
        [str(CLOUD), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


async def test_cli_set_target_triggers_and_delete_locks_out(
    client: httpx.AsyncClient,
    key: str,
    sqlite_db: Database,
    broker: MosquittoBroker,
    tmp_path: Path,
) -> None:
    """The CLI does not run in the serve process: it publishes the trigger itself and
    deletes the broker account itself, each over a short connection of its own."""
    device = await provision(client, key)
    env = cli_env(sqlite_db, broker, tmp_path)
    target_file = tmp_path / "target.json"
    target_file.write_text(json.dumps(target((1, "web", "nginx:2"))))
    async with mqtt_client(device) as mqtt:
        await mqtt.subscribe(update_topic(device.uuid), qos=1)
        assert await run_cli(env, "devices", "set-target", device.uuid, str(target_file)) == "1\n"
        message = await next_message(mqtt)
        assert message.topic.value == update_topic(device.uuid)
        await run_cli(env, "devices", "delete", device.uuid)
        await expect_disconnect(mqtt)


async def test_failed_commit_deletes_the_broker_account_again(
    client: httpx.AsyncClient, key: str, broker: MosquittoBroker
) -> None:
    device_uuid = new_uuid()

    def fail_commit(session: Session) -> None:
        if any(
            isinstance(row, Device) and row.uuid == device_uuid
            for row in session.identity_map.values()
        ):
            raise OperationalError("COMMIT", {}, Exception("disk I/O error"))

    exchange = await exchanged(client, device_uuid, key)
    data = RegistrationData(deviceUuid=device_uuid, provisioningApiKey=key)
    event.listen(Session, "before_commit", fail_commit)
    try:
        answer = await register(
            client, device_uuid, exchange.keyId, sealed_registration(exchange, data)
        )
    finally:
        event.remove(Session, "before_commit", fail_commit)
    assert answer.status_code == 503, answer.text
    (shown,) = broker.dynsec_responses(
        [{"command": "getClient", "username": device_username(device_uuid)}]
    )
    assert "not found" in shown["error"].lower()
    # It was there: created before the commit, deleted after the commit failed.
    assert f"createClient | username={device_username(device_uuid)}" in broker.log()
    missing = await client.get(f"/api/admin/v1/devices/{device_uuid}", headers=ADMIN)
    assert missing.status_code == 404


async def test_serve_runs_the_link(tmp_path: Path) -> None:
    """The real ``serve``: connects at start, registers devices on the broker, stores
    reports that arrive over MQTT; without MQTT_PASSWORD it says broker management is off.
    Its own broker: clouds sharing a broker share the state reports ($share), so the
    module's cloud (another database) would take some of them."""
    with mosquitto_or_fail(tmp_path / "broker", "the serve test") as broker:
        await check_serve(tmp_path, broker)


async def check_serve(tmp_path: Path, broker: MosquittoBroker) -> None:
    ca_file = tmp_path / "ca.pem"
    ca_file.write_text(broker.ca_cert_pem)
    cloud = CloudProcess(
        tmp_path / "cloud",
        MQTT_BROKER_URL=broker.url(tls=True),
        MQTT_CA_CERT_FILE=str(ca_file),
        MQTT_ADMIN_URL=broker.url(tls=True),
        MQTT_PASSWORD=broker.admin_password,
    ).start()
    try:
        wait_for(lambda: "connected as iotistic-cloud" in cloud.log(), WAIT_S, 0.02, "no link")
        headers = cloud.admin_headers
        async with httpx.AsyncClient(base_url=cloud.url) as client:
            answer = await client.post("/api/admin/v1/keys", json={}, headers=headers)
            device = await provision(client, answer.json()["key"])
            async with mqtt_client(device) as mqtt:
                body = json.dumps(report(device.uuid, 1, full=True, cpu_usage=3))
                await mqtt.publish(state_topic(device.uuid), body, qos=1)
            path = f"/api/admin/v1/devices/{device.uuid}/reports"

            async def stored() -> bool:
                return bool((await client.get(path, headers=headers)).json())

            await wait_for_async(stored, WAIT_S, 0.05, "report not stored")
    finally:
        cloud.stop()
    assert "Application shutdown complete" in cloud.log()
    assert "Traceback" not in cloud.log()
    assert broker.admin_password not in cloud.log()
    assert device.mqtt_password not in cloud.log()

    off = CloudProcess(tmp_path / "off").start()
    try:
        assert "MQTT broker management is off (MQTT_PASSWORD is not set)" in off.log()
    finally:
        off.stop()


async def test_cloud_sets_up_the_broker_defaults(app: FastAPI, broker: MosquittoBroker) -> None:
    """On a broker fresh from ``dynsec init`` (the module's), after the cloud connected."""
    defaults, cloud_user, role = broker.dynsec(
        [
            {"command": "getDefaultACLAccess"},
            {"command": "getClient", "username": broker.admin_username},
            {"command": "getRole", "rolename": "iotistic-cloud"},
        ]
    )
    assert {acl["acltype"]: acl["allow"] for acl in defaults["data"]["acls"]} == {
        "publishClientSend": False,
        "publishClientReceive": False,
        "subscribe": False,
        "unsubscribe": True,
    }
    roles = {r["rolename"] for r in cloud_user["data"]["client"]["roles"]}
    assert roles == {"admin", "iotistic-cloud"}
    acls = [(a["acltype"], a["topic"], a["allow"]) for a in role["data"]["role"]["acls"]]
    assert acls == [("publishClientSend", "agent/+/update", True)]


async def test_a_device_cannot_take_another_devices_client_id(
    client: httpx.AsyncClient, key: str
) -> None:
    """Registration pins each broker account to the device's client id: b, logged in as
    itself, cannot connect as device_<a's uuid> (which would knock a off the broker), while
    a keeps its connection and b still connects with its own id."""
    a, b = await provision(client, key), await provision(client, key)
    async with mqtt_client(a) as mqtt_a:
        await mqtt_a.subscribe(f"sensor/{a.uuid}/#", qos=1)
        with pytest.raises(aiomqtt.MqttError, match=r"[Nn]ot authori[sz]ed"):
            async with mqtt_client(b, identifier=a.registration.mqtt.username):
                pass
        # a was not knocked off: its connection still carries its own messages.
        await mqtt_a.publish(sensor_topic(a.uuid, "t"), b"still here", qos=1)
        assert (await next_message(mqtt_a)).payload == b"still here"
        # Its own login is pinned too: with any other id it gets nowhere.
        with pytest.raises(aiomqtt.MqttError, match=r"[Nn]ot authori[sz]ed"):
            async with mqtt_client(a, identifier="a-second-connection"):
                pass
    async with mqtt_client(b) as mqtt_b:
        await mqtt_b.publish(sensor_topic(b.uuid, "t"), b"b is fine", qos=1)


def direct_client(
    broker: MosquittoBroker, device_uuid: str, password: str, identifier: str
) -> aiomqtt.Client:
    return aiomqtt.Client(
        broker.host,
        broker.plain_port,
        username=device_username(device_uuid),
        password=password,
        identifier=identifier,
        protocol=aiomqtt.ProtocolVersion.V5,
        timeout=WAIT_S,
    )


async def test_accounts_of_an_earlier_release_are_pinned_at_connect(
    tmp_path: Path, sqlite_db: Database
) -> None:
    """Device accounts made before the pinning get their client id when the cloud
    connects; from then on another device cannot use it."""
    with MosquittoBroker(tmp_path / "broker", cloud_acls=False) as own_broker:
        old, other = new_uuid(), new_uuid()
        old_password = own_broker.add_device(old, pinned=False)
        other_password = own_broker.add_device(other, pinned=False)
        # Unpinned, other's login may take old's client id: the hole the pinning closes.
        async with direct_client(own_broker, other, other_password, device_username(old)):
            pass
        settings = broker_settings(tmp_path, sqlite_db, own_broker, admin_tls=False)
        async with running_cloud(settings, sqlite_db):
            pinned = own_broker.dynsec(
                [
                    {"command": "getClient", "username": device_username(uuid)}
                    for uuid in (old, other)
                ]
            )
            assert [r["data"]["client"].get("clientid") for r in pinned] == [
                device_username(old),
                device_username(other),
            ]
        with pytest.raises(aiomqtt.MqttError, match=r"[Nn]ot authori[sz]ed"):
            async with direct_client(own_broker, other, other_password, device_username(old)):
                pass
        async with direct_client(own_broker, old, old_password, device_username(old)):
            pass
        # Once: the next connect finds nothing to pin.
        assert own_broker.log().count("| modifyClient |") == 2

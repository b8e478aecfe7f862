"""The throwaway broker helper itself (tests/support/mosquitto.py): TLS, dynsec users, restart."""

from __future__ import annotations

import ssl
import uuid
from collections.abc import Iterator
from pathlib import Path

import aiomqtt
import pytest
from iotistic_contracts.mqtt import device_username, update_topic

from tests.support.mosquitto import MosquittoBroker, mosquitto_or_fail


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MosquittoBroker]:
    with mosquitto_or_fail(tmp_path_factory.mktemp("mosquitto"), "the broker tests") as running:
        yield running


def tls_context(ca_pem: str) -> ssl.SSLContext:
    context = ssl.create_default_context(cadata=ca_pem)
    return context


async def test_device_connects_over_tls_and_plain(broker: MosquittoBroker) -> None:
    device = str(uuid.uuid4())
    password = broker.add_device(device)
    async with aiomqtt.Client(
        broker.host, broker.tls_port, username=device_username(device), password=password,
        tls_context=tls_context(broker.ca_cert_pem),
    ) as client:  # fmt: skip
        await client.subscribe(update_topic(device), qos=1)
    async with aiomqtt.Client(
        broker.host, broker.plain_port, username=device_username(device), password=password
    ) as client:
        await client.publish(update_topic(device), b"x", qos=1)


async def test_anonymous_and_wrong_password_are_refused(broker: MosquittoBroker) -> None:
    device = str(uuid.uuid4())
    broker.add_device(device)
    with pytest.raises(aiomqtt.MqttError):
        async with aiomqtt.Client(broker.host, broker.plain_port):
            pass
    with pytest.raises(aiomqtt.MqttError):
        async with aiomqtt.Client(
            broker.host, broker.plain_port, username=device_username(device), password="wrong"
        ):
            pass


async def test_restart_keeps_ports_and_users(tmp_path: Path) -> None:
    with MosquittoBroker(tmp_path) as broker:
        device = str(uuid.uuid4())
        password = broker.add_device(device)
        ports = (broker.plain_port, broker.tls_port)
        broker.restart()
        assert (broker.plain_port, broker.tls_port) == ports
        async with aiomqtt.Client(
            broker.host, broker.plain_port, username=device_username(device), password=password
        ):
            pass
        assert "mosquitto version" in broker.log()
    assert not broker.running

"""The throwaway broker helper itself (tests/support/mosquitto.py): TLS, dynsec users, restart."""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import aiomqtt
import pytest
from iotistic_contracts.mqtt import device_username, update_topic

from tests.integration.waiting import wait_for
from tests.support.certs import CertificateAuthority
from tests.support.mosquitto import MosquittoBroker, mosquitto_or_fail, plugin_path
from tests.support.net import free_port

REPO = Path(__file__).resolve().parents[2]


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
    name = device_username(device)
    async with aiomqtt.Client(
        broker.host, broker.tls_port, username=name, password=password, identifier=name,
        tls_context=tls_context(broker.ca_cert_pem),
    ) as client:  # fmt: skip
        await client.subscribe(update_topic(device), qos=1)
    async with aiomqtt.Client(
        broker.host, broker.plain_port, username=name, password=password, identifier=name
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
        name = device_username(device)
        async with aiomqtt.Client(
            broker.host, broker.plain_port, username=name, password=password, identifier=name
        ):
            pass
        assert "mosquitto version" in broker.log()
    assert not broker.running


def test_deploy_config_starts(tmp_path: Path) -> None:
    """deploy/mosquitto/mosquitto.conf, with its paths and ports moved into tmp_path."""
    config = (REPO / "deploy" / "mosquitto" / "mosquitto.conf").read_text()
    plain, tls = free_port(), free_port()
    ca = CertificateAuthority.create()
    (tmp_path / "ca.crt").write_text(ca.cert_pem)
    ca.issue_server().write(tmp_path, "server")
    dynsec = tmp_path / "dynamic-security.json"
    init = [shutil.which("mosquitto_ctrl") or "mosquitto_ctrl", "dynsec", "init", str(dynsec)]
    subprocess.run([*init, "iotistic-cloud", "pw"], check=True, capture_output=True)
    for old, new in (
        ("/var/lib/mosquitto/", f"{tmp_path}/"),
        ("/etc/mosquitto/certs/", f"{tmp_path}/"),
        ("/usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so", plugin_path()),
        ("listener 1883 127.0.0.1", f"listener {plain} 127.0.0.1"),
        ("listener 8883\n", f"listener {tls} 127.0.0.1\n"),
    ):
        assert old in config
        config = config.replace(old, new)
    (tmp_path / "mosquitto.conf").write_text(config + "user root\n")
    mosquitto = shutil.which("mosquitto", path="/usr/sbin:/usr/bin") or "mosquitto"
    proc = subprocess.Popen(
        [mosquitto, "-c", str(tmp_path / "mosquitto.conf")],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:

        def listening() -> bool:
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            try:
                for port in (plain, tls):
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
            except OSError:
                return False
            return True

        wait_for(listening, 20, 0.02, "the deploy config did not start")
    finally:
        proc.terminate()
        proc.wait(10)

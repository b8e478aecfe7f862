"""A throwaway Mosquitto broker for tests (Debian's mosquitto 2.0 with dynamic security).

    with MosquittoBroker(tmp_path) as broker:      # or broker = MosquittoBroker(dir).start()
        broker.host, broker.plain_port, broker.tls_port, broker.ca_cert_pem
        broker.admin_username, broker.admin_password   # the cloud's user, iotistic-cloud
        password = broker.add_device(device_uuid)      # client device_<uuid>, role device_<uuid>,
                                                       # pinned to client id device_<uuid>
        broker.add_client("svc", password, device_username(device_uuid))  # another login
        broker.restart()                               # same ports, same dynsec state
        broker.log()

In a fixture, ``with mosquitto_or_fail(tmp_path, "the MQTT tests") as broker: yield broker``.

The broker listens on 127.0.0.1:<free port> without TLS and on 127.0.0.1:<free port> with TLS
(a fresh CA and a server certificate for 127.0.0.1 and localhost, tests/support/certs.py).
Anonymous access is off; users and ACLs live in the dynamic-security plugin's JSON file,
created by ``mosquitto_ctrl dynsec init`` with the admin user ``iotistic-cloud``. With
``cloud_acls=True`` (the default) the file is then prepared as the deployment prepares it
(deploy/mosquitto/README.md, and the cloud does the same at start): the default ACL access
denies publishing, receiving and subscribing, and the admin's ``cloud`` role may publish
``agent/+/update``. A missing mosquitto raises MosquittoUnavailable: callers fail the test
run (they never skip).

As root, mosquitto would drop its privileges to the ``mosquitto`` user, which cannot read
pytest's private temporary directories; the generated config says ``user root`` (ignored when
the tests do not run as root).
"""

from __future__ import annotations

import contextlib
import json
import secrets
import shutil
import signal
import socket
import subprocess
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any, Final

import paho.mqtt.client as paho
import pytest
from iotistic_cloud.mqtt.accounts import account_commands, delete_commands
from iotistic_contracts.mqtt import CLOUD_MQTT_USERNAME, device_username
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from tests.integration.waiting import wait_for
from tests.support.certs import CertificateAuthority
from tests.support.net import free_port

START_TIMEOUT_S: Final = 20
STOP_TIMEOUT_S: Final = 10
COMMAND_TIMEOUT_S: Final = 10
PLUGIN_CANDIDATES: Final = (
    "/usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so",
    "/usr/lib/aarch64-linux-gnu/mosquitto_dynamic_security.so",
    "/usr/lib/arm-linux-gnueabihf/mosquitto_dynamic_security.so",
    "/usr/lib/mosquitto_dynamic_security.so",
    "/usr/local/lib/mosquitto_dynamic_security.so",
)
CONTROL_TOPIC: Final = "$CONTROL/dynamic-security/v1"
RESPONSE_TOPIC: Final = "$CONTROL/dynamic-security/v1/response"
CLOUD_ROLE: Final = "iotistic-cloud"
# What the cloud itself may publish besides the $CONTROL API (see deploy/mosquitto/README.md).
CLOUD_ROLE_ACLS: Final = (("publishClientSend", "agent/+/update"),)
DENY_ALL_DEFAULTS: Final = {
    "publishClientSend": False,
    "publishClientReceive": False,
    "subscribe": False,
    "unsubscribe": True,
}


class MosquittoUnavailable(RuntimeError):
    pass


class DynsecError(RuntimeError):
    pass


def _tool(name: str) -> str:
    path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin:/usr/local/sbin")
    if path is None:
        raise MosquittoUnavailable(
            f"{name} not found: install Debian's 'mosquitto' and 'mosquitto-clients' packages "
            "(scripts/bootstrap.sh does as root)"
        )
    return path


def plugin_path() -> str:
    for candidate in PLUGIN_CANDIDATES:
        if Path(candidate).is_file():
            return candidate
    raise MosquittoUnavailable(
        "mosquitto_dynamic_security.so not found (Debian's 'mosquitto' package ships it)"
    )


class MosquittoBroker:
    def __init__(
        self,
        work_dir: Path,
        *,
        admin_username: str = CLOUD_MQTT_USERNAME,
        admin_password: str | None = None,
        cloud_acls: bool = True,
    ) -> None:
        self.work_dir = Path(work_dir)
        self.admin_username = admin_username
        self.admin_password = admin_password or secrets.token_urlsafe(18)
        self.cloud_acls = cloud_acls
        self.host = "127.0.0.1"
        self.plain_port = 0
        self.tls_port = 0
        self.ca = CertificateAuthority.create("Iotistic test broker CA")
        self.proc: subprocess.Popen[bytes] | None = None
        self._mosquitto = _tool("mosquitto")
        self._ctrl = _tool("mosquitto_ctrl")
        self._plugin = plugin_path()

    # -- files -------------------------------------------------------------------------------

    @property
    def ca_cert_pem(self) -> str:
        return self.ca.cert_pem

    @property
    def ca_cert_path(self) -> Path:
        return self.work_dir / "ca.crt"

    @property
    def config_path(self) -> Path:
        return self.work_dir / "mosquitto.conf"

    @property
    def dynsec_path(self) -> Path:
        return self.work_dir / "dynamic-security.json"

    @property
    def log_path(self) -> Path:
        return self.work_dir / "mosquitto.log"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def _prepare(self) -> None:
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.ca_cert_path.write_text(self.ca.cert_pem)
        cert_path, key_path = self.ca.issue_server(["127.0.0.1", "localhost"]).write(
            self.work_dir, "server"
        )
        self.dynsec_path.unlink(missing_ok=True)
        init = subprocess.run(
            [self._ctrl, "dynsec", "init", str(self.dynsec_path), self.admin_username,
             self.admin_password],
            capture_output=True, text=True, check=False, timeout=30,
        )  # fmt: skip
        if init.returncode != 0:
            raise MosquittoUnavailable(f"mosquitto_ctrl dynsec init failed: {init.stderr}")
        if self.cloud_acls:
            self._prepare_cloud_acls()
        self.plain_port, self.tls_port = free_port(), free_port()
        while self.tls_port == self.plain_port:
            self.tls_port = free_port()
        self.config_path.write_text(
            "\n".join(
                [
                    "per_listener_settings false",
                    "allow_anonymous false",
                    "persistence false",
                    "user root",
                    f"log_dest file {self.log_path}",
                    "log_type error",
                    "log_type warning",
                    "log_type notice",
                    "log_type information",
                    "connection_messages true",
                    "log_timestamp_format %Y-%m-%dT%H:%M:%S",
                    f"plugin {self._plugin}",
                    f"plugin_opt_config_file {self.dynsec_path}",
                    "",
                    f"listener {self.plain_port} {self.host}",
                    "",
                    f"listener {self.tls_port} {self.host}",
                    f"cafile {self.ca_cert_path}",
                    f"certfile {cert_path}",
                    f"keyfile {key_path}",
                    "",
                ]
            )
        )

    def _prepare_cloud_acls(self) -> None:
        """What deploy/mosquitto/README.md tells an operator to do after ``dynsec init``."""
        data: dict[str, Any] = json.loads(self.dynsec_path.read_text())
        data["defaultACLAccess"] = dict(DENY_ALL_DEFAULTS)
        data["roles"].append(
            {
                "rolename": CLOUD_ROLE,
                "acls": [
                    {"acltype": acltype, "topic": topic, "allow": True}
                    for acltype, topic in CLOUD_ROLE_ACLS
                ],
            }
        )
        for client in data["clients"]:
            if client["username"] == self.admin_username:
                client["roles"].append({"rolename": CLOUD_ROLE})
        self.dynsec_path.write_text(json.dumps(data, indent=2))

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> MosquittoBroker:
        self._prepare()
        try:
            self._launch()
        except BaseException:
            self.stop()
            raise
        return self

    def _launch(self) -> None:
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [self._mosquitto, "-c", str(self.config_path)],
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.work_dir,
            )
        wait_for(self._ready, START_TIMEOUT_S, interval=0.02, message="mosquitto did not start")

    def _ready(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise MosquittoUnavailable(
                f"mosquitto exited with {self.proc.returncode}:\n{self.log()}"
            )
        for port in (self.plain_port, self.tls_port):
            try:
                with socket.create_connection((self.host, port), timeout=1):
                    pass
            except OSError:
                return False
        return True

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def restart(self) -> None:
        """Stop and start again: same ports, certificates and dynamic-security state."""
        self.stop()
        self._launch()

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def __enter__(self) -> MosquittoBroker:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- dynamic security --------------------------------------------------------------------

    def url(self, tls: bool = False) -> str:
        return (
            f"mqtts://{self.host}:{self.tls_port}"
            if tls
            else f"mqtt://{self.host}:{self.plain_port}"
        )

    def dynsec_responses(self, commands: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Send commands to the $CONTROL API as the admin (plain listener); returns the
        responses as they are (one per command, an ``error`` key on failure)."""
        return _control_request(
            self.host, self.plain_port, self.admin_username, self.admin_password, commands
        )

    def dynsec(self, commands: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Like dynsec_responses, raising DynsecError if any response carries an error."""
        responses = self.dynsec_responses(commands)
        errors = [r for r in responses if r.get("error")]
        if errors:
            raise DynsecError(f"dynamic-security errors: {errors}")
        return responses

    def add_device(
        self, device_uuid: str, password: str | None = None, *, pinned: bool = True
    ) -> str:
        """Create client ``device_<uuid>`` with role ``device_<uuid>`` (``device_acls``) as the
        cloud does, pinned to client id ``device_<uuid>`` (``pinned=False``: as releases
        before the pinning made them); returns its password."""
        password = password or secrets.token_urlsafe(24)
        commands = account_commands(device_uuid, password)
        if not pinned:
            for command in commands:
                command.pop("clientid", None)
        self.dynsec(commands)
        return password

    def add_client(self, username: str, password: str, rolename: str) -> None:
        """A login of its own with an existing role (a service sharing a device's topics)."""
        self.dynsec(
            [
                {"command": "createClient", "username": username, "password": password,
                 "roles": [{"rolename": rolename}]}
            ]
        )  # fmt: skip

    def remove_device(self, device_uuid: str) -> None:
        self.dynsec(delete_commands(device_username(device_uuid)))


def _control_request(
    host: str, port: int, username: str, password: str, commands: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """One synchronous round trip to the dynamic-security plugin (paho, MQTT 5)."""
    correlation = uuid.uuid4().hex
    tagged = [{**command, "correlationData": f"{correlation}-{i}"} for i, command in
              enumerate(commands)]  # fmt: skip
    expected = {command["correlationData"] for command in tagged}
    received: list[dict[str, Any]] = []
    subscribed, done = threading.Event(), threading.Event()
    failure: list[str] = []

    def on_connect(
        client: paho.Client, _u: Any, _f: Any, reason: ReasonCode, _p: Properties | None
    ) -> None:
        if reason.is_failure:
            failure.append(f"connect refused: {reason}")
            done.set()
            return
        client.subscribe(RESPONSE_TOPIC, qos=1)

    def on_subscribe(
        _c: paho.Client, _u: Any, _m: int, reasons: list[ReasonCode], _p: Properties | None
    ) -> None:
        if any(reason.is_failure for reason in reasons):
            failure.append(f"subscribe refused: {reasons}")
            done.set()
        subscribed.set()

    def on_message(_c: paho.Client, _u: Any, message: paho.MQTTMessage) -> None:
        body = json.loads(message.payload)
        for response in body.get("responses", []):
            if response.get("correlationData") in expected:
                received.append(response)
        if len(received) >= len(tagged):
            done.set()

    client = paho.Client(CallbackAPIVersion.VERSION2, protocol=paho.MQTTv5)
    client.username_pw_set(username, password)
    client.on_connect = on_connect
    client.on_subscribe = on_subscribe
    client.on_message = on_message
    client.connect(host, port, keepalive=30)
    client.loop_start()
    try:
        if not subscribed.wait(COMMAND_TIMEOUT_S) or failure:
            raise DynsecError(failure[0] if failure else "no SUBACK from the broker")
        client.publish(CONTROL_TOPIC, json.dumps({"commands": tagged}), qos=1)
        if not done.wait(COMMAND_TIMEOUT_S) or failure:
            raise DynsecError(failure[0] if failure else "no dynamic-security response")
    finally:
        client.disconnect()
        client.loop_stop()
    return received


@contextlib.contextmanager
def mosquitto_or_fail(work_dir: Path, purpose: str, **options: Any) -> Iterator[MosquittoBroker]:
    """A running broker for a fixture; its absence fails the tests (they never skip)."""
    try:
        broker = MosquittoBroker(work_dir, **options)
        broker.start()
    except MosquittoUnavailable as exc:
        pytest.fail(f"Mosquitto is required for {purpose}: {exc}")
    try:
        yield broker
    finally:
        broker.stop()

"""A small fake cloud for provisioning tests, built on the real contracts and their crypto.

It really opens the device's sealed registration with its own private key and really seals
the secrets to the device's public key, so the agent's side is tested end to end over HTTP.
Failures are switched on per test: refusals with the cloud's `{"error": ...}` shape, broken
answers, a tampered secrets box, a key exchange that waits for the test.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import random
import socket
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer
from iotistic_agent.backoff import Backoff
from iotistic_agent.provisioning.service import Provisioner
from iotistic_agent.settings import AgentSettings
from iotistic_agent.store.db import open_database
from iotistic_agent.store.device import CloudCredentials, DeviceStore
from iotistic_contracts.provisioning import (
    ApiSettings,
    ApiTlsConfig,
    BrokerConfig,
    DeviceSecrets,
    KeyExchangeRequest,
    KeyExchangeResponse,
    MqttSettings,
    RegisteredDevice,
    RegisterRequest,
    RegisterResponse,
    RegistrationData,
    open_json,
    register_aad,
    seal_json,
    secrets_aad,
)
from iotistic_contracts.sealed import (
    SealedBox,
    generate_private_key,
    load_public_key,
    public_key_pem,
)
from pydantic import ValidationError

from tests.integration.waiting import wait_for_async

PROVISIONING_KEY = "pk_test_0123456789abcdef"
DEVICE_API_KEY = "dak_SECRET_device_api_key_4242"
MQTT_PASSWORD = "mqtt_SECRET_password_4242"
KEY_ID = "kx-1"
# Tiny delays: tests wait on conditions, never on the clock.
FAST = Backoff(base_s=0.01, max_s=0.08)

# One RSA key for every fake cloud of the test session: generating one takes a moment.
_CLOUD_KEY = generate_private_key()


@dataclasses.dataclass(frozen=True)
class RecordingBackoff(Backoff):
    """The real backoff, remembering every delay it handed out."""

    delays: list[float] = dataclasses.field(default_factory=list)
    refused: list[bool] = dataclasses.field(default_factory=list)

    @property
    def refusals(self) -> int:
        return sum(self.refused)

    def delay(self, failures: int, rand: Callable[[], float] = random.random) -> float:
        value = super().delay(failures, rand)
        self.delays.append(value)
        self.refused.append(False)
        return value

    def capped_delay(self, rand: Callable[[], float] = random.random) -> float:
        value = super().capped_delay(rand)
        self.delays.append(value)
        self.refused.append(True)
        return value


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


@dataclasses.dataclass
class Registered:
    data: RegistrationData
    device_public_key: str


class FakeCloud:
    def __init__(self, key: str = PROVISIONING_KEY) -> None:
        self.key = key
        self.private_key = _CLOUD_KEY
        self.device_keys: dict[str, str] = {}  # uuid -> device public key PEM
        self.registered: dict[str, Registered] = {}
        self.requests: list[tuple[str, str]] = []
        self.auth_headers: list[str] = []
        # Switches for failures, set by the tests.
        self.key_exchange_failure: web.Response | None = None
        self.register_failure: web.Response | None = None
        self.delete_failure: web.Response | None = None
        self.tamper_secrets = False
        self.other_uuid: str | None = None
        self.changing_key_id = False
        self.api_endpoint: str | None = None  # default: this server's own URL
        self.tls_config: ApiTlsConfig | None = ApiTlsConfig(verifyCertificate=True)
        self.hold_key_exchange: asyncio.Event | None = None
        self.key_exchange_started = asyncio.Event()
        self.url = ""

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/api/provisioning/v2/key-exchange", self._key_exchange)
        app.router.add_post("/api/provisioning/v2/register", self._register)
        app.router.add_delete("/api/v1/device/{uuid}", self._delete)
        return app

    async def _key_exchange(self, request: web.Request) -> web.Response:
        self.requests.append(("POST", request.path))
        self.key_exchange_started.set()
        if self.hold_key_exchange is not None:
            await self.hold_key_exchange.wait()
        if self.key_exchange_failure is not None:
            return self.key_exchange_failure
        try:
            body = KeyExchangeRequest.model_validate_json(await request.read())
        except ValidationError:
            return error(400, "invalid key exchange request")
        if body.provisioningApiKey != self.key:
            return error(401, "invalid provisioning key")
        if body.devicePublicKey is not None:
            self.device_keys[body.deviceUuid] = body.devicePublicKey
        key_id = KEY_ID + ("x" if self.changing_key_id and body.devicePublicKey else "")
        answer = KeyExchangeResponse(
            apiPublicKey=public_key_pem(self.private_key),
            keyId=key_id,
            expiresAt=(datetime.now(UTC) + timedelta(minutes=10)).isoformat(),
        )
        return web.json_response(text=answer.model_dump_json())

    async def _register(self, request: web.Request) -> web.Response:
        self.requests.append(("POST", request.path))
        if self.register_failure is not None:
            return self.register_failure
        body = RegisterRequest.model_validate_json(await request.read())
        data = open_json(
            self.private_key,
            body.sealed,
            register_aad(body.deviceUuid, body.keyId),
            RegistrationData,
        )
        if data.provisioningApiKey != self.key or data.deviceUuid != body.deviceUuid:
            return error(401, "invalid provisioning key")
        device_key = self.device_keys.get(body.deviceUuid)
        if device_key is None:
            return error(400, "no device public key: run the key exchange first")
        self.registered[body.deviceUuid] = Registered(data, device_key)
        secrets = seal_json(
            load_public_key(device_key),
            DeviceSecrets(deviceApiKey=DEVICE_API_KEY, mqttPassword=MQTT_PASSWORD),
            secrets_aad(body.deviceUuid),
        )
        if self.tamper_secrets:
            secrets = tampered(secrets)
        uuid = self.other_uuid or body.deviceUuid
        answer = RegisterResponse(
            device=RegisteredDevice(deviceId=f"dev-{uuid[:8]}", uuid=uuid, deviceName=None),
            mqtt=MqttSettings(
                brokerUrl="mqtts://broker.test:8883",
                username=f"device_{uuid}",
                brokerConfig=BrokerConfig(
                    protocol="mqtts", host="broker.test", port=8883, useTls=True
                ),
            ),
            api=ApiSettings(endpoint=self.api_endpoint or self.url, tlsConfig=self.tls_config),
            secrets=secrets,
        )
        return web.json_response(text=answer.model_dump_json())

    async def _delete(self, request: web.Request) -> web.Response:
        self.requests.append(("DELETE", request.path))
        self.auth_headers.append(request.headers.get("Authorization", ""))
        if self.delete_failure is not None:
            return self.delete_failure
        if request.headers.get("Authorization") != f"Bearer {DEVICE_API_KEY}":
            return error(401, "invalid device API key")
        if self.registered.pop(request.match_info["uuid"], None) is None:
            return error(404, "device not found")
        return web.Response(status=204)


def tampered(box: SealedBox) -> SealedBox:
    raw = bytearray(base64.b64decode(box.ciphertext))
    raw[0] ^= 0x01
    return box.model_copy(update={"ciphertext": base64.b64encode(bytes(raw)).decode()})


async def start_cloud(cloud: FakeCloud, port: int | None = None) -> TestServer:
    server = TestServer(cloud.app(), host="127.0.0.1", port=port)
    await server.start_server()
    cloud.url = str(server.make_url("")).rstrip("/")
    return server


@contextlib.asynccontextmanager
async def running_cloud() -> AsyncIterator[FakeCloud]:
    cloud = FakeCloud()
    server = await start_cloud(cloud)
    try:
        yield cloud
    finally:
        await server.close()


@dataclasses.dataclass
class Device:
    devices: DeviceStore
    provisioner: Provisioner
    data_dir: Path
    provisioned: list[CloudCredentials]
    deprovisioned: list[bool]


def make_device(
    tmp_path: Path, env: dict[str, str] | None = None, backoff: Backoff = FAST, **kwargs: Any
) -> Device:
    devices = DeviceStore(open_database(tmp_path / "device.sqlite"))
    devices.ensure_identity()
    settings = AgentSettings.from_env(
        {"DATABASE_PATH": str(tmp_path / "device.sqlite"), **(env or {})}
    )
    provisioned: list[CloudCredentials] = []
    deprovisioned: list[bool] = []
    options: dict[str, Any] = {
        "on_provisioned": provisioned.append,
        "on_deprovisioned": lambda: deprovisioned.append(True),
        "backoff": backoff,
        "timeout_s": 5.0,
        **kwargs,
    }
    provisioner = Provisioner(devices, lambda: settings, tmp_path, **options)
    return Device(devices, provisioner, tmp_path, provisioned, deprovisioned)


async def wait_until(condition: Callable[[], bool], within_s: float = 10.0) -> None:
    """Poll a condition (cheaply) until it holds; fail the test after `within_s`."""
    await wait_for_async(condition, within_s, 0.005, f"condition not met within {within_s} s")

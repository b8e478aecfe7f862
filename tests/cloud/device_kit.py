"""A small test-side device: the provisioning and sync calls an agent makes, with real crypto.

It uses only the shared contracts, so it checks the cloud against the same wire models the
agent uses. One RSA key pair serves every simulated device (key generation is the slow
part and the cloud treats each registration independently anyway).
"""

from __future__ import annotations

import functools
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric import rsa
from iotistic_contracts.provisioning import (
    DeviceSecrets,
    KeyExchangeResponse,
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

ADMIN_TOKEN = "admin-token-for-tests-0123456789"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
KEY_EXCHANGE = "/api/provisioning/v2/key-exchange"
REGISTER = "/api/provisioning/v2/register"
REPORT = "/api/v1/device/state"


@functools.cache
def device_private_key() -> rsa.RSAPrivateKey:
    return generate_private_key()


def device_public_pem() -> str:
    return public_key_pem(device_private_key())


@dataclass
class SimDevice:
    uuid: str
    api_key: str
    mqtt_password: str
    registration: RegisterResponse

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}

    @property
    def state_path(self) -> str:
        return f"/api/v1/device/{self.uuid}/state"


def new_uuid() -> str:
    return str(uuid.uuid4())


async def create_key(client: httpx.AsyncClient, **body: Any) -> str:
    response = await client.post("/api/admin/v1/keys", json=body, headers=ADMIN)
    assert response.status_code == 201, response.text
    key: str = response.json()["key"]
    return key


async def key_exchange(
    client: httpx.AsyncClient, device_uuid: str, key: str, public_key: str | None = None
) -> httpx.Response:
    body: dict[str, Any] = {"deviceUuid": device_uuid, "provisioningApiKey": key}
    if public_key is not None:
        body["devicePublicKey"] = public_key
    return await client.post(KEY_EXCHANGE, json=body)


async def exchanged(client: httpx.AsyncClient, device_uuid: str, key: str) -> KeyExchangeResponse:
    """Phase 1 done the spec's way: a first call without, a second with the public key."""
    first = await key_exchange(client, device_uuid, key)
    assert first.status_code == 200, first.text
    second = await key_exchange(client, device_uuid, key, device_public_pem())
    assert second.status_code == 200, second.text
    return KeyExchangeResponse.model_validate_json(second.content)


def sealed_registration(
    exchange: KeyExchangeResponse, data: RegistrationData, aad: bytes | None = None
) -> SealedBox:
    if aad is None:
        aad = register_aad(data.deviceUuid, exchange.keyId)
    return seal_json(load_public_key(exchange.apiPublicKey), data, aad)


async def register(
    client: httpx.AsyncClient, device_uuid: str, key_id: str, box: SealedBox
) -> httpx.Response:
    request = RegisterRequest(deviceUuid=device_uuid, keyId=key_id, sealed=box)
    return await client.post(REGISTER, json=request.model_dump(mode="json"))


def open_registration(response: httpx.Response, device_uuid: str) -> SimDevice:
    assert response.status_code == 201, response.text
    registration = RegisterResponse.model_validate_json(response.content)
    secrets = open_json(
        device_private_key(), registration.secrets, secrets_aad(device_uuid), DeviceSecrets
    )
    return SimDevice(device_uuid, secrets.deviceApiKey, secrets.mqttPassword, registration)


async def provision(
    client: httpx.AsyncClient, key: str, name: str = "test-device", **data: Any
) -> SimDevice:
    device_uuid = new_uuid()
    exchange = await exchanged(client, device_uuid, key)
    registration = RegistrationData(
        deviceUuid=device_uuid, provisioningApiKey=key, deviceName=name, **data
    )
    box = sealed_registration(exchange, registration)
    return open_registration(await register(client, device_uuid, exchange.keyId, box), device_uuid)


def report(device_uuid: str, sequence: int, full: bool = False, **fields: Any) -> dict[str, Any]:
    body = {"sequence": sequence, "reportedAt": "2026-11-25T12:00:00+00:00", **fields}
    if full:
        body["full"] = True
    return {device_uuid: body}


def target(*apps: tuple[int, str, str], config: dict[str, Any] | None = None) -> dict[str, Any]:
    """A target state with one service per app: (appId, serviceName, image)."""
    return {
        "apps": {
            str(app_id): {
                "appId": app_id,
                "appName": f"app{app_id}",
                "services": [{"serviceId": 1, "serviceName": name, "imageName": image}],
            }
            for app_id, name, image in apps
        },
        "config": config or {},
    }

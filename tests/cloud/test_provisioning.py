"""Two-phase provisioning through the HTTP API, with real cryptography on both sides."""

from __future__ import annotations

import httpx
from iotistic_cloud.composition import Cloud
from iotistic_cloud.db.models import Device, KeyExchange
from iotistic_cloud.tokens import mqtt_password_matches, token_hash
from iotistic_contracts.provisioning import KeyExchangeResponse
from iotistic_contracts.sealed import generate_private_key, public_key_pem

from tests.cloud.conftest import SettableClock
from tests.cloud.device_kit import (
    ADMIN,
    create_key,
    device_public_pem,
    exchanged,
    key_exchange,
    new_uuid,
    open_registration,
    provision,
    register,
    sealed_registration,
)
from tests.cloud.provisioning_checks import (
    assert_nothing_stored,
    count,
    key_usage,
    registration,
    start,
)


async def test_two_phase_provisioning_issues_working_secrets(
    client: httpx.AsyncClient, cloud: Cloud, key: str
) -> None:
    device_uuid, exchange = await start(client, key)
    data = registration(
        device_uuid,
        key,
        deviceName="pi-kitchen",
        deviceType="raspberrypi4-64",
        macAddress="AA:BB:CC:DD:EE:FF",
        osVersion="Debian 12",
        agentVersion="0.1.0",
    )
    response = await register(
        client, device_uuid, exchange.keyId, sealed_registration(exchange, data)
    )
    device = open_registration(response, device_uuid)

    body = response.json()
    assert body["device"]["uuid"] == device_uuid
    assert body["device"]["deviceName"] == "pi-kitchen"
    assert body["mqtt"]["username"] == f"device_{device_uuid}"
    assert body["mqtt"]["brokerUrl"] == "mqtt://127.0.0.1:1883"
    assert body["mqtt"]["brokerConfig"]["useTls"] is False
    assert body["api"]["endpoint"] == "http://cloud.test"
    # The secrets travel only inside the box sealed to the device's key.
    assert device.api_key not in response.text
    assert device.mqtt_password not in response.text

    poll = await client.get(device.state_path, headers=device.auth)
    assert poll.status_code == 200
    async with cloud.database.sessions() as session:
        row = await session.get(Device, device_uuid)
    assert row is not None
    assert row.api_key_hash == token_hash(device.api_key)
    assert mqtt_password_matches(device.mqtt_password, row.mqtt_password_hash)
    assert device.mqtt_password not in row.mqtt_password_hash
    assert (row.name, row.device_type, row.mac, row.os_version, row.agent_version) == (
        "pi-kitchen",
        "raspberrypi4-64",
        "aa:bb:cc:dd:ee:ff",
        "Debian 12",
        "0.1.0",
    )
    assert row.fleet == "tests"
    assert await key_usage(cloud) == [1]
    assert await count(cloud, KeyExchange) == 0


async def test_single_call_with_public_key_works(client: httpx.AsyncClient, key: str) -> None:
    device_uuid = new_uuid()
    answer = await key_exchange(client, device_uuid, key, device_public_pem())
    assert answer.status_code == 200
    exchange = KeyExchangeResponse.model_validate_json(answer.content)
    box = sealed_registration(exchange, registration(device_uuid, key))
    open_registration(await register(client, device_uuid, exchange.keyId, box), device_uuid)


async def test_second_call_reuses_the_pending_exchange(client: httpx.AsyncClient, key: str) -> None:
    device_uuid = new_uuid()
    first = (await key_exchange(client, device_uuid, key)).json()
    second = (await key_exchange(client, device_uuid, key, device_public_pem())).json()
    assert second["keyId"] == first["keyId"]
    assert second["apiPublicKey"] == first["apiPublicKey"]
    assert second["expiresAt"].endswith("+00:00")


async def test_each_exchange_has_its_own_cloud_key(client: httpx.AsyncClient, key: str) -> None:
    one = (await key_exchange(client, new_uuid(), key)).json()
    two = (await key_exchange(client, new_uuid(), key)).json()
    assert one["keyId"] != two["keyId"]
    assert one["apiPublicKey"] != two["apiPublicKey"]


async def test_a_new_device_key_pair_gets_a_new_exchange(
    client: httpx.AsyncClient, cloud: Cloud, key: str
) -> None:
    """A device that restarted mid-way with a new key pair can finish; the old id is dead."""
    device_uuid, old = await start(client, key)
    other_pem = public_key_pem(generate_private_key())
    answer = await key_exchange(client, device_uuid, key, other_pem)
    assert answer.status_code == 200
    assert answer.json()["keyId"] != old.keyId
    assert await count(cloud, KeyExchange) == 1
    box = sealed_registration(old, registration(device_uuid, key))
    gone = await register(client, device_uuid, old.keyId, box)
    assert gone.status_code == 410


async def test_unknown_key(client: httpx.AsyncClient) -> None:
    answer = await key_exchange(client, new_uuid(), "not-a-real-provisioning-key")
    assert answer.status_code == 401
    assert answer.json() == {"error": "provisioning key is not valid"}
    assert answer.headers["www-authenticate"] == "Bearer"


async def test_revoked_key(client: httpx.AsyncClient, key: str) -> None:
    keys = (await client.get("/api/admin/v1/keys", headers=ADMIN)).json()
    revoked = await client.delete(f"/api/admin/v1/keys/{keys[0]['id']}", headers=ADMIN)
    assert revoked.status_code == 204
    answer = await key_exchange(client, new_uuid(), key)
    assert answer.status_code == 401
    assert answer.json() == {"error": "provisioning key was revoked"}


async def test_expired_key(client: httpx.AsyncClient, clock: SettableClock) -> None:
    key = await create_key(client, expiresInS=60)
    assert (await key_exchange(client, new_uuid(), key)).status_code == 200
    clock.advance(61)
    answer = await key_exchange(client, new_uuid(), key)
    assert answer.status_code == 401
    assert answer.json() == {"error": "provisioning key has expired"}


async def test_exhausted_key(client: httpx.AsyncClient, cloud: Cloud) -> None:
    key = await create_key(client, maxDevices=1)
    await provision(client, key)
    answer = await key_exchange(client, new_uuid(), key)
    assert answer.status_code == 403
    assert answer.json() == {"error": "provisioning key has reached its maximum of 1 devices"}
    assert await key_usage(cloud) == [1]


async def test_last_slot_taken_between_exchange_and_register(
    client: httpx.AsyncClient, cloud: Cloud
) -> None:
    key = await create_key(client, maxDevices=1)
    late_uuid, late = await start(client, key)
    await provision(client, key)
    box = sealed_registration(late, registration(late_uuid, key))
    answer = await register(client, late_uuid, late.keyId, box)
    assert answer.status_code == 403
    assert "maximum of 1 devices" in answer.json()["error"]
    assert await count(cloud, Device) == 1
    assert await key_usage(cloud) == [1]


async def test_key_revoked_between_exchange_and_register(
    client: httpx.AsyncClient, cloud: Cloud, key: str
) -> None:
    device_uuid, exchange = await start(client, key)
    await client.delete("/api/admin/v1/keys/1", headers=ADMIN)
    box = sealed_registration(exchange, registration(device_uuid, key))
    answer = await register(client, device_uuid, exchange.keyId, box)
    assert answer.status_code == 401
    assert answer.json() == {"error": "provisioning key was revoked"}
    assert await count(cloud, Device) == 0


async def test_registered_uuid_is_a_conflict(client: httpx.AsyncClient, key: str) -> None:
    device = await provision(client, key)
    answer = await key_exchange(client, device.uuid, key)
    assert answer.status_code == 409
    assert answer.json() == {
        "error": f"device {device.uuid} is already registered; "
        "delete it on the cloud or deprovision it first"
    }


async def test_register_needs_the_device_public_key(
    client: httpx.AsyncClient, cloud: Cloud, key: str
) -> None:
    device_uuid = new_uuid()
    exchange = KeyExchangeResponse.model_validate_json(
        (await key_exchange(client, device_uuid, key)).content
    )
    box = sealed_registration(exchange, registration(device_uuid, key))
    answer = await register(client, device_uuid, exchange.keyId, box)
    assert answer.status_code == 400
    assert "has no device public key" in answer.json()["error"]
    assert await count(cloud, Device) == 0


async def test_expired_exchange(
    client: httpx.AsyncClient, cloud: Cloud, clock: SettableClock, key: str
) -> None:
    device_uuid, exchange = await start(client, key)
    clock.advance(cloud.settings.key_exchange_ttl_s + 1)
    box = sealed_registration(exchange, registration(device_uuid, key))
    answer = await register(client, device_uuid, exchange.keyId, box)
    assert answer.status_code == 410
    assert "unknown, expired or already used" in answer.json()["error"]
    await assert_nothing_stored(cloud)
    # The next exchange purges it and starts afresh.
    renewed = await exchanged(client, device_uuid, key)
    assert renewed.keyId != exchange.keyId
    assert await count(cloud, KeyExchange) == 1


async def test_expired_exchanges_of_other_devices_are_purged(
    client: httpx.AsyncClient, cloud: Cloud, clock: SettableClock, key: str
) -> None:
    for _ in range(3):
        await key_exchange(client, new_uuid(), key)
    clock.advance(cloud.settings.key_exchange_ttl_s + 1)
    await key_exchange(client, new_uuid(), key)
    assert await count(cloud, KeyExchange) == 1


async def test_invalid_requests_never_echo_the_key(early_client: httpx.AsyncClient) -> None:
    secret = "s3cret-provisioning-key-value"
    answer = await early_client.post(
        "/api/provisioning/v2/key-exchange",
        json={"deviceUuid": "not-a-uuid", "provisioningApiKey": secret, "extra": secret},
    )
    assert answer.status_code == 400
    body = answer.json()
    assert secret not in answer.text
    assert {"field": "deviceUuid", "message": body["errors"][0]["message"]} in body["errors"]
    assert {"field": "extra", "message": "unknown field"} in body["errors"]
    assert body["error"].startswith("invalid request: deviceUuid: must be a UUID")


async def test_invalid_device_public_key(client: httpx.AsyncClient, key: str) -> None:
    answer = await key_exchange(client, new_uuid(), key, "-----BEGIN PUBLIC KEY-----\nxx")
    assert answer.status_code == 400
    assert answer.json()["errors"][0]["field"] == "devicePublicKey"

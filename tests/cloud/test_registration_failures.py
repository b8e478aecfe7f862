"""Registrations that must fail leave nothing behind: bad boxes, replays, races."""

from __future__ import annotations

import asyncio

import httpx
from iotistic_cloud.composition import Cloud
from iotistic_cloud.db.models import Device, KeyExchange
from iotistic_contracts.provisioning import register_aad

from tests.cloud.device_kit import (
    create_key,
    new_uuid,
    open_registration,
    register,
    sealed_registration,
)
from tests.cloud.provisioning_checks import (
    assert_nothing_stored,
    count,
    key_usage,
    registration,
    start,
    tampered,
)


async def test_tampered_ciphertext(client: httpx.AsyncClient, cloud: Cloud, key: str) -> None:
    device_uuid, exchange = await start(client, key)
    box = tampered(sealed_registration(exchange, registration(device_uuid, key)))
    answer = await register(client, device_uuid, exchange.keyId, box)
    assert answer.status_code == 400
    assert answer.json() == {"error": "registration payload could not be decrypted"}
    await assert_nothing_stored(cloud)


async def test_wrong_aad(client: httpx.AsyncClient, cloud: Cloud, key: str) -> None:
    device_uuid, exchange = await start(client, key)
    data = registration(device_uuid, key)
    box = sealed_registration(exchange, data, aad=register_aad(new_uuid(), exchange.keyId))
    answer = await register(client, device_uuid, exchange.keyId, box)
    assert answer.status_code == 400
    assert answer.json() == {"error": "registration payload could not be decrypted"}
    await assert_nothing_stored(cloud)


async def test_box_for_another_exchange(client: httpx.AsyncClient, cloud: Cloud, key: str) -> None:
    """Sealed to exchange A's key and id, sent under exchange B's id: refused."""
    uuid_a, exchange_a = await start(client, key)
    uuid_b, exchange_b = await start(client, key)
    box = sealed_registration(exchange_a, registration(uuid_b, key))
    answer = await register(client, uuid_b, exchange_b.keyId, box)
    assert answer.status_code == 400
    assert answer.json() == {"error": "registration payload could not be decrypted"}
    # And the uuid must be the one the exchange was made for.
    mismatch = await register(client, uuid_a, exchange_b.keyId, box)
    assert mismatch.status_code == 400
    assert "issued to another device" in mismatch.json()["error"]
    await assert_nothing_stored(cloud, exchanges=2)


async def test_replayed_key_id(client: httpx.AsyncClient, cloud: Cloud, key: str) -> None:
    device_uuid, exchange = await start(client, key)
    box = sealed_registration(exchange, registration(device_uuid, key))
    open_registration(await register(client, device_uuid, exchange.keyId, box), device_uuid)
    replay = await register(client, device_uuid, exchange.keyId, box)
    assert replay.status_code == 410
    assert replay.json() == {
        "error": f"key exchange {exchange.keyId} is unknown, expired or already used; start again"
    }
    assert await count(cloud, Device) == 1
    assert await key_usage(cloud) == [1]


async def test_provisioning_key_inside_must_match_the_exchange(
    client: httpx.AsyncClient, cloud: Cloud, key: str
) -> None:
    other_key = await create_key(client, fleet="other")
    device_uuid, exchange = await start(client, key)
    for inside, error in [
        ("x" * 40, "provisioning key is not valid"),
        (other_key, "provisioning key does not match the key exchange"),
    ]:
        box = sealed_registration(exchange, registration(device_uuid, inside))
        answer = await register(client, device_uuid, exchange.keyId, box)
        assert answer.status_code == 401
        assert answer.json()["error"] == error
    assert await count(cloud, Device) == 0
    assert await key_usage(cloud) == [0, 0]


async def test_sealed_payload_for_another_uuid(
    client: httpx.AsyncClient, cloud: Cloud, key: str
) -> None:
    device_uuid, exchange = await start(client, key)
    data = registration(new_uuid(), key)
    box = sealed_registration(exchange, data, aad=register_aad(device_uuid, exchange.keyId))
    answer = await register(client, device_uuid, exchange.keyId, box)
    assert answer.status_code == 400
    assert "another device" in answer.json()["error"]
    await assert_nothing_stored(cloud)


async def test_invalid_sealed_payload_names_fields_not_values(
    client: httpx.AsyncClient, cloud: Cloud, key: str
) -> None:
    device_uuid, exchange = await start(client, key)
    # A payload that decrypts but is not valid RegistrationData (NUL inside a name).
    data = registration(device_uuid, key, deviceName="bad\x00name")
    box = sealed_registration(exchange, data)
    answer = await register(client, device_uuid, exchange.keyId, box)
    assert answer.status_code == 400
    assert answer.json()["errors"] == [
        {"field": "deviceName", "message": "must not contain NUL characters"}
    ]
    assert key not in answer.text
    await assert_nothing_stored(cloud)


async def test_failure_after_the_first_writes_rolls_everything_back(
    client: httpx.AsyncClient, cloud: Cloud, key: str
) -> None:
    """The device row fails last (its uuid was taken meanwhile, as by a concurrent
    registration): the exchange deletion and the key usage already written are undone."""
    device_uuid, exchange = await start(client, key)
    async with cloud.database.sessions() as session, session.begin():
        pending = await session.get(KeyExchange, exchange.keyId)
        assert pending is not None
        session.add(
            Device(
                uuid=device_uuid,
                device_id="taken",
                api_key_hash="0" * 64,
                mqtt_username=f"device_{device_uuid}",
                mqtt_password_hash="x",
                registered_at=pending.created_at,
                target_state={"apps": {}, "config": {}},
                target_hash="0" * 64,
                target_version=0,
                target_etag='"0-0"',
                target_body="{}",
                target_updated_at=pending.created_at,
            )
        )
    box = sealed_registration(exchange, registration(device_uuid, key))
    answer = await register(client, device_uuid, exchange.keyId, box)
    assert answer.status_code == 409
    assert "is already registered" in answer.json()["error"]
    assert await key_usage(cloud) == [0]
    assert await count(cloud, KeyExchange) == 1
    assert await count(cloud, Device) == 1


async def test_concurrent_registrations_for_the_last_slot(
    client: httpx.AsyncClient, cloud: Cloud
) -> None:
    key = await create_key(client, maxDevices=1)
    started = [await start(client, key) for _ in range(2)]
    answers = await asyncio.gather(
        *(
            register(
                client,
                uuid_,
                exchange.keyId,
                sealed_registration(exchange, registration(uuid_, key)),
            )
            for uuid_, exchange in started
        )
    )
    assert sorted(answer.status_code for answer in answers) == [201, 403]
    assert await count(cloud, Device) == 1
    assert await key_usage(cloud) == [1]
    assert await count(cloud, KeyExchange) == 1, "the loser's exchange is kept"


async def test_concurrent_replays_register_once(
    client: httpx.AsyncClient, cloud: Cloud, key: str
) -> None:
    device_uuid, exchange = await start(client, key)
    box = sealed_registration(exchange, registration(device_uuid, key))
    answers = await asyncio.gather(
        *(register(client, device_uuid, exchange.keyId, box) for _ in range(3))
    )
    statuses = sorted(answer.status_code for answer in answers)
    assert statuses[0] == 201
    assert set(statuses[1:]) <= {409, 410}
    assert await count(cloud, Device) == 1
    assert await key_usage(cloud) == [1]

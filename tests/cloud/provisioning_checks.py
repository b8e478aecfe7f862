"""Checks shared by the provisioning tests: what the database holds, a started exchange."""

from __future__ import annotations

import base64
from typing import Any

import httpx
from iotistic_cloud.composition import Cloud
from iotistic_cloud.db.models import Device, KeyExchange, ProvisioningKey
from iotistic_contracts.provisioning import KeyExchangeResponse, RegistrationData
from iotistic_contracts.sealed import SealedBox
from sqlalchemy import func, select

from tests.cloud.device_kit import exchanged, new_uuid


async def count(cloud: Cloud, model: Any) -> int:
    async with cloud.database.sessions() as session:
        return int((await session.execute(select(func.count()).select_from(model))).scalar_one())


async def key_usage(cloud: Cloud) -> list[int]:
    async with cloud.database.sessions() as session:
        stmt = select(ProvisioningKey.devices_registered).order_by(ProvisioningKey.id)
        return list((await session.execute(stmt)).scalars())


async def start(client: httpx.AsyncClient, key: str) -> tuple[str, KeyExchangeResponse]:
    device_uuid = new_uuid()
    return device_uuid, await exchanged(client, device_uuid, key)


def registration(device_uuid: str, key: str, **fields: Any) -> RegistrationData:
    return RegistrationData(deviceUuid=device_uuid, provisioningApiKey=key, **fields)


def tampered(box: SealedBox) -> SealedBox:
    ciphertext = bytearray(base64.b64decode(box.ciphertext))
    ciphertext[0] ^= 1
    return box.model_copy(update={"ciphertext": base64.b64encode(ciphertext).decode()})


async def assert_nothing_stored(cloud: Cloud, exchanges: int = 1) -> None:
    assert await count(cloud, Device) == 0
    assert await key_usage(cloud) == [0]
    assert await count(cloud, KeyExchange) == exchanges

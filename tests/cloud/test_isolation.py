"""Every device route needs the device's own key and never reaches another device's data."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.cloud.device_kit import ADMIN, REPORT, SimDevice, provision, report, target

# (method, path template, body template): {uuid} is the device the request targets.
DEVICE_ROUTES: list[tuple[str, str, Any]] = [
    ("GET", "/api/v1/device/{uuid}/state", None),
    ("PATCH", REPORT, "report"),
    ("DELETE", "/api/v1/device/{uuid}", None),
]


def request_for(route: tuple[str, str, Any], victim: str) -> tuple[str, str, Any]:
    method, path, body = route
    payload = report(victim, 1, full=True, cpu_usage=50) if body == "report" else None
    return method, path.format(uuid=victim), payload


async def snapshot(client: httpx.AsyncClient, device: SimDevice) -> Any:
    shown = await client.get(f"/api/admin/v1/devices/{device.uuid}", headers=ADMIN)
    assert shown.status_code == 200, "the other device must still exist"
    body = shown.json()
    return {k: v for k, v in body.items() if k not in ("lastSeen", "status")}


@pytest.mark.parametrize("route", DEVICE_ROUTES, ids=[f"{m} {p}" for m, p, _ in DEVICE_ROUTES])
async def test_a_key_opens_only_its_own_device(
    client: httpx.AsyncClient, key: str, route: tuple[str, str, Any]
) -> None:
    attacker = await provision(client, key, name="attacker")
    victim = await provision(client, key, name="victim")
    victim_target = target((7, "db", "postgres:16"))
    await client.put(
        f"/api/admin/v1/devices/{victim.uuid}/target", json=victim_target, headers=ADMIN
    )
    before = await snapshot(client, victim)

    method, path, payload = request_for(route, victim.uuid)
    answer = await client.request(method, path, json=payload, headers=attacker.auth)
    assert answer.status_code == 403, answer.text
    assert "postgres:16" not in answer.text
    assert set(answer.json()) == {"error"}
    assert await snapshot(client, victim) == before


BAD_AUTHORIZATIONS = [None, "Bearer", "Bearer not-a-device-key", "Basic dXNlcjpwYXNz", "bearer  "]


@pytest.mark.parametrize("route", DEVICE_ROUTES, ids=[f"{m} {p}" for m, p, _ in DEVICE_ROUTES])
async def test_missing_or_invalid_key_is_401(
    client: httpx.AsyncClient, key: str, route: tuple[str, str, Any]
) -> None:
    device = await provision(client, key)
    before = await snapshot(client, device)
    method, path, payload = request_for(route, device.uuid)
    for authorization in BAD_AUTHORIZATIONS:
        headers = {} if authorization is None else {"Authorization": authorization}
        answer = await client.request(method, path, json=payload, headers=headers)
        assert answer.status_code == 401, authorization
        assert answer.headers["www-authenticate"] == "Bearer"
        assert set(answer.json()) == {"error"}
    assert await snapshot(client, device) == before


async def test_the_admin_token_is_not_a_device_key(client: httpx.AsyncClient, key: str) -> None:
    device = await provision(client, key)
    answer = await client.get(device.state_path, headers=ADMIN)
    assert answer.status_code == 401


async def test_a_device_key_is_not_an_admin_token(client: httpx.AsyncClient, key: str) -> None:
    device = await provision(client, key)
    answer = await client.get("/api/admin/v1/devices", headers=device.auth)
    assert answer.status_code == 401
    assert answer.json() == {"error": "admin token is not valid"}


async def test_a_device_deprovisions_itself(client: httpx.AsyncClient, key: str) -> None:
    device = await provision(client, key)
    answer = await client.delete(f"/api/v1/device/{device.uuid}", headers=device.auth)
    assert answer.status_code == 204
    assert answer.content == b""
    assert (await client.get(device.state_path, headers=device.auth)).status_code == 401
    gone = await client.get(f"/api/admin/v1/devices/{device.uuid}", headers=ADMIN)
    assert gone.status_code == 404
    # It may provision again with the same uuid now.
    again = await client.post(
        "/api/provisioning/v2/key-exchange",
        json={"deviceUuid": device.uuid, "provisioningApiKey": key},
    )
    assert again.status_code == 200


async def test_malformed_uuid_in_a_device_path(client: httpx.AsyncClient, key: str) -> None:
    device = await provision(client, key)
    answer = await client.get("/api/v1/device/not-a-uuid/state", headers=device.auth)
    assert answer.status_code == 400
    assert answer.json()["errors"][0]["field"] == "uuid"

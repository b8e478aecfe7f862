"""The admin API: token, provisioning keys, devices."""

from __future__ import annotations

import httpx
import pytest
from iotistic_cloud.composition import Cloud

from tests.cloud.conftest import SettableClock
from tests.cloud.device_kit import ADMIN, provision

ADMIN_ROUTES = [
    ("POST", "/api/admin/v1/keys"),
    ("GET", "/api/admin/v1/keys"),
    ("DELETE", "/api/admin/v1/keys/1"),
    ("GET", "/api/admin/v1/devices"),
    ("GET", "/api/admin/v1/devices/9b0c5b1e-8f0e-4f7e-9d6f-3f1c2a4b5c6d"),
    ("PUT", "/api/admin/v1/devices/9b0c5b1e-8f0e-4f7e-9d6f-3f1c2a4b5c6d/target"),
    ("DELETE", "/api/admin/v1/devices/9b0c5b1e-8f0e-4f7e-9d6f-3f1c2a4b5c6d"),
    ("GET", "/api/admin/v1/devices/9b0c5b1e-8f0e-4f7e-9d6f-3f1c2a4b5c6d/reports"),
]


@pytest.mark.parametrize(("method", "path"), ADMIN_ROUTES)
@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer wrong-token-wrong-token", "Bearer admin-token-for-tests-012345678"],
    ids=["missing", "wrong", "prefix"],
)
async def test_admin_routes_need_the_token(
    early_client: httpx.AsyncClient, method: str, path: str, authorization: str | None
) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    answer = await early_client.request(method, path, json={}, headers=headers)
    assert answer.status_code == 401
    assert answer.headers["www-authenticate"] == "Bearer"


async def test_create_list_revoke_keys(client: httpx.AsyncClient, clock: SettableClock) -> None:
    created = await client.post(
        "/api/admin/v1/keys",
        json={"fleet": "factory-7", "maxDevices": 5, "expiresInS": 3600},
        headers=ADMIN,
    )
    assert created.status_code == 201
    body = created.json()
    secret = body.pop("key")
    assert len(secret) >= 40
    assert body["prefix"] == secret[:8]
    assert body["fleet"] == "factory-7"
    assert (body["maxDevices"], body["devicesRegistered"], body["status"]) == (5, 0, "active")
    assert body["expiresAt"].endswith("+00:00")

    listed = (await client.get("/api/admin/v1/keys", headers=ADMIN)).json()
    assert listed == [body]
    assert secret not in (await client.get("/api/admin/v1/keys", headers=ADMIN)).text

    assert (
        await client.delete(f"/api/admin/v1/keys/{body['id']}", headers=ADMIN)
    ).status_code == 204
    # Revoking twice is fine and keeps the first time.
    first = (await client.get("/api/admin/v1/keys", headers=ADMIN)).json()[0]
    assert first["status"] == "revoked"
    clock.advance(10)
    await client.delete(f"/api/admin/v1/keys/{body['id']}", headers=ADMIN)
    assert (await client.get("/api/admin/v1/keys", headers=ADMIN)).json()[0] == first


async def test_key_statuses(client: httpx.AsyncClient, clock: SettableClock) -> None:
    await client.post("/api/admin/v1/keys", json={"expiresInS": 5}, headers=ADMIN)
    await client.post("/api/admin/v1/keys", json={}, headers=ADMIN)
    clock.advance(6)
    keys = (await client.get("/api/admin/v1/keys", headers=ADMIN)).json()
    assert [(k["id"], k["fleet"], k["status"]) for k in keys] == [
        (1, "default", "expired"),
        (2, "default", "active"),
    ]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"fleet": ""}, "fleet"),
        ({"fleet": "has space"}, "fleet"),
        ({"maxDevices": 0}, "maxDevices"),
        ({"maxDevices": "5"}, "maxDevices"),
        ({"expiresInS": -1}, "expiresInS"),
        ({"expiresInS": 10**12}, "expiresInS"),
        ({"name": "x"}, "name"),
    ],
)
async def test_invalid_key_requests(
    early_client: httpx.AsyncClient, body: object, field: str
) -> None:
    answer = await early_client.post("/api/admin/v1/keys", json=body, headers=ADMIN)
    assert answer.status_code == 400
    assert [e["field"] for e in answer.json()["errors"]] == [field]


@pytest.mark.parametrize("key_id", ["0", "99", str(2**40), "-1"])
async def test_revoke_unknown_key(client: httpx.AsyncClient, key_id: str) -> None:
    answer = await client.delete(f"/api/admin/v1/keys/{key_id}", headers=ADMIN)
    assert answer.status_code == 404
    assert answer.json() == {"error": f"provisioning key {key_id} does not exist"}


async def test_revoke_key_id_must_be_a_number(early_client: httpx.AsyncClient) -> None:
    answer = await early_client.delete("/api/admin/v1/keys/abc", headers=ADMIN)
    assert answer.status_code == 400
    assert answer.json()["errors"][0]["field"] == "key_id"


async def test_devices_list_and_show_hold_no_secrets(
    client: httpx.AsyncClient, cloud: Cloud, clock: SettableClock, key: str
) -> None:
    one = await provision(client, key, name="one", osVersion="Debian 12")
    clock.advance(1)
    two = await provision(client, key, name="two")
    listed = await client.get("/api/admin/v1/devices", headers=ADMIN)
    assert [d["name"] for d in listed.json()] == ["one", "two"]
    assert {d["status"] for d in listed.json()} == {"online"}

    shown = await client.get(f"/api/admin/v1/devices/{one.uuid}", headers=ADMIN)
    body = shown.json()
    assert body["uuid"] == one.uuid
    assert body["osVersion"] == "Debian 12"
    assert body["target"] == {"apps": {}, "config": {}}
    assert body["targetVersion"] == 0
    assert body["reportedState"] is None
    assert body["mqttUsername"] == f"device_{one.uuid}"
    for text in (listed.text, shown.text):
        for secret in (one.api_key, one.mqtt_password, two.api_key, key):
            assert secret not in text
        assert "hash" not in text.lower()
        assert "password" not in text.lower()

    clock.advance(cloud.settings.offline_after_s + 1)
    statuses = (await client.get("/api/admin/v1/devices", headers=ADMIN)).json()
    assert {d["status"] for d in statuses} == {"offline"}


async def test_show_and_delete_unknown_or_malformed(client: httpx.AsyncClient) -> None:
    missing = "9b0c5b1e-8f0e-4f7e-9d6f-3f1c2a4b5c6d"
    for method in ("GET", "DELETE"):
        answer = await client.request(method, f"/api/admin/v1/devices/{missing}", headers=ADMIN)
        assert answer.status_code == 404
        assert answer.json() == {"error": f"device {missing} does not exist"}
        bad = await client.request(method, "/api/admin/v1/devices/xyz", headers=ADMIN)
        assert bad.status_code == 400
        assert bad.json()["errors"][0]["field"] == "uuid"


async def test_admin_delete_removes_the_device(client: httpx.AsyncClient, key: str) -> None:
    device = await provision(client, key)
    answer = await client.delete(f"/api/admin/v1/devices/{device.uuid.upper()}", headers=ADMIN)
    assert answer.status_code == 204
    assert (await client.get(device.state_path, headers=device.auth)).status_code == 401
    assert (await client.get("/api/admin/v1/devices", headers=ADMIN)).json() == []

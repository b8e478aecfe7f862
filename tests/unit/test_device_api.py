"""Device API state routes, served by aiohttp against the in-memory engine."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from api_support import KEY, api_context
from iotistic_agent.device_api.app import create_app
from iotistic_agent.device_api.auth import load_or_create_key
from iotistic_agent.engine.memory import MemoryEngine
from iotistic_agent.orchestrator.reconciler import Reconciler


def target(image: str = "reg/web:v1", **config: Any) -> dict[str, Any]:
    service = {"serviceId": 1, "serviceName": "web", "imageName": image, "config": config}
    return {"apps": {"1001": {"appId": 1001, "appName": "demo", "services": [service]}}}


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[tuple[TestClient[Any, Any], Reconciler]]:
    context = api_context(tmp_path, MemoryEngine(registry={"reg/web:v1"}))
    reconciler = context.reconciler
    app = create_app(context, api_key=KEY)
    headers = {"Authorization": f"Bearer {KEY}"}
    async with TestClient(TestServer(app), headers=headers) as test_client:
        yield test_client, reconciler


async def test_ping_and_version(client: tuple[TestClient[Any, Any], Reconciler]) -> None:
    c, _ = client
    assert await (await c.get("/ping")).text() == "OK"
    body = await (await c.get("/v2/version")).json()
    assert body["status"] == "success" and body["version"]


async def test_posted_target_is_persisted_and_applied(
    client: tuple[TestClient[Any, Any], Reconciler],
) -> None:
    c, reconciler = client
    response = await c.post("/v2/local/target-state", json=target())
    assert response.status == 200
    body = await response.json()
    assert body["changed"] is True and body["version"] == 1
    got = await c.get("/v2/local/target-state")
    assert (await got.json())["apps"]["1001"]["services"][0]["imageName"] == "reg/web:v1"
    assert got.headers["X-Target-Version"] == "1"
    await reconciler.reconcile()
    state = await (await c.get("/v2/applications/state")).json()
    web = state["1001"]["services"]["web"]
    assert web["status"] == "Running" and web["containerId"] and web["error"] is None


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        (target(portz=["80"]), "apps.1001.services[0].config.portz: unknown field"),
        (target(ports=["99999:80"]), "ports"),
        (target(resources={"limits": {"memory": "lots"}}), "memory"),
        ({"apps": {"1": target()["apps"]["1001"]}}, "apps.1"),
        ([1, 2], "object"),
    ],
)
async def test_invalid_targets_get_400_naming_the_field(
    client: tuple[TestClient[Any, Any], Reconciler], body: Any, needle: str
) -> None:
    c, _ = client
    response = await c.post("/v2/local/target-state", json=body)
    assert response.status == 400
    payload = await response.json()
    assert payload["error"] == "invalid_target_state"
    assert needle in payload["message"]
    stored = await (await c.get("/v2/local/target-state")).json()
    assert stored["apps"] == {}


async def test_bodies_that_are_not_json_or_too_large_are_refused(
    client: tuple[TestClient[Any, Any], Reconciler],
) -> None:
    c, _ = client
    response = await c.post("/v2/local/target-state", data=b"{not json")
    assert response.status == 400 and "JSON" in (await response.json())["message"]
    huge = await c.post("/v2/local/target-state", data=b"x" * (2 * 1024 * 1024))
    assert huge.status == 413
    assert (await huge.json())["error"] == "payload_too_large"


async def test_unknown_route_is_a_json_404(client: tuple[TestClient[Any, Any], Reconciler]) -> None:
    c, _ = client
    response = await c.get("/v2/nothing-here")
    assert response.status == 404
    assert (await response.json())["error"] == "not_found"


async def test_every_route_but_the_probes_needs_the_key(tmp_path: Path) -> None:
    context = api_context(tmp_path, MemoryEngine())
    async with TestClient(TestServer(create_app(context, api_key=KEY))) as c:
        assert (await c.get("/ping")).status == 200
        assert (await c.get("/v1/healthy")).status == 200
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": KEY}):
            response = await c.get("/v2/applications/state", headers=headers)
            assert response.status == 401
            assert (await response.json())["error"] == "unauthorized"
        forwarded = {"X-Forwarded-For": "127.0.0.1"}
        assert (await c.get("/v2/local/target-state", headers=forwarded)).status == 401
        ok = await c.get("/v2/applications/state", headers={"Authorization": f"Bearer {KEY}"})
        assert ok.status == 200


def test_the_key_file_is_created_once_with_owner_only_permissions(tmp_path: Path) -> None:
    key = load_or_create_key(tmp_path)
    assert len(key) >= 32
    assert (tmp_path / "device-api.key").stat().st_mode & 0o777 == 0o600
    assert load_or_create_key(tmp_path) == key

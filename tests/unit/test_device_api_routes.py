"""Device API app, service, config and system routes over the in-memory engine."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from api_support import KEY, api_context
from iotistic_agent.device_api.app import create_app
from iotistic_agent.device_api.context import ApiContext
from iotistic_agent.engine.memory import MemoryEngine

IMAGE = "reg/img:v1"
Client = TestClient[Any, Any]


def two_apps() -> dict[str, Any]:
    def svc(sid: int, name: str, **config: Any) -> dict[str, Any]:
        return {"serviceId": sid, "serviceName": name, "imageName": IMAGE, "config": config}

    return {
        "apps": {
            "1001": {
                "appId": 1001,
                "appName": "one",
                "services": [svc(1, "web", volumes=["data:/data"]), svc(2, "api")],
            },
            "1002": {"appId": 1002, "appName": "two", "services": [svc(3, "web")]},
        }
    }


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[tuple[Client, ApiContext, MemoryEngine]]:
    engine = MemoryEngine(registry={IMAGE})
    context = api_context(tmp_path, engine)
    headers = {"Authorization": f"Bearer {KEY}"}
    async with TestClient(TestServer(create_app(context, api_key=KEY)), headers=headers) as c:
        assert (await c.post("/v2/local/target-state", json=two_apps())).status == 200
        await context.reconciler.reconcile()
        yield c, context, engine


def statuses(engine: MemoryEngine) -> dict[tuple[int, str], str]:
    return {c.key: c.status for c in engine.containers.values()}


async def test_app_stop_persists_until_start(api: tuple[Client, ApiContext, MemoryEngine]) -> None:
    c, ctx, engine = api
    assert (await c.post("/v1/apps/1001/stop")).status == 200
    await ctx.reconciler.reconcile()
    assert statuses(engine)[(1001, "web")] == "exited"
    assert statuses(engine)[(1002, "web")] == "running"
    assert ctx.targets.overrides() == {(1001, "web"): "stopped", (1001, "api"): "stopped"}
    info = await (await c.get("/v1/apps/1001")).json()
    assert {s["override"] for s in info["services"]} == {"stopped"}
    assert (await c.post("/v1/apps/1001/start")).status == 200
    await ctx.reconciler.reconcile()
    assert set(statuses(engine).values()) == {"running"}


async def test_a_new_target_for_a_service_ends_its_override(
    api: tuple[Client, ApiContext, MemoryEngine],
) -> None:
    c, ctx, _ = api
    await c.post("/v2/applications/1001/stop-service", json={"serviceName": "api"})
    assert ctx.targets.overrides() == {(1001, "api"): "stopped"}
    changed = two_apps()
    changed["apps"]["1001"]["services"][1]["config"] = {"environment": {"NEW": "1"}}
    await c.post("/v2/local/target-state", json=changed)
    assert ctx.targets.overrides() == {}


async def test_restart_service_restarts_the_same_container(
    api: tuple[Client, ApiContext, MemoryEngine],
) -> None:
    c, _, engine = api
    before = {cid for cid, info in engine.containers.items() if info.key == (1001, "api")}
    engine.log.clear()
    response = await c.post("/v2/applications/1001/restart-service", json={"serviceName": "api"})
    assert response.status == 200
    assert engine.log == [f"stop api {IMAGE}", f"start api {IMAGE}"]
    assert {cid for cid, info in engine.containers.items() if info.key == (1001, "api")} == before


async def test_app_restart_recreates_and_purge_removes_volumes(
    api: tuple[Client, ApiContext, MemoryEngine],
) -> None:
    c, ctx, engine = api
    before = set(engine.containers)
    assert (await c.post("/v1/restart", json={"appId": 1001})).status == 200
    await ctx.reconciler.reconcile()
    assert len(engine.containers) == 3 and len(set(engine.containers) & before) == 1
    assert "1001_data" in engine.volumes
    assert (await c.post("/v2/applications/1001/purge")).status == 200
    assert "1001_data" not in engine.volumes
    assert not any(c.app_id == 1001 for c in engine.containers.values())
    await ctx.reconciler.reconcile()  # the app comes back, with a new empty volume
    assert "1001_data" in engine.volumes
    assert sum(1 for c in engine.containers.values() if c.app_id == 1001) == 2


@pytest.mark.parametrize(
    ("ref", "status", "name"),
    [
        ("api", 200, "api"),
        ("api-2", 200, "api"),
        ("1002/web", 200, "web"),
        ("web", 409, None),
        ("nope", 404, None),
        ("1003/web", 404, None),
    ],
)
async def test_service_references(
    api: tuple[Client, ApiContext, MemoryEngine], ref: str, status: int, name: str | None
) -> None:
    c, _, engine = api
    response = await c.get(f"/v1/services/{ref.replace('/', '%2F')}")
    assert response.status == status, await response.text()
    body = await response.json()
    if name is None:
        assert body["error"] in ("conflict", "not_found") and body["message"]
    else:
        assert body["serviceName"] == name and body["containerId"] in engine.containers


async def test_a_container_name_is_a_reference_too(
    api: tuple[Client, ApiContext, MemoryEngine],
) -> None:
    c, _, engine = api
    container = next(i for i in engine.containers.values() if i.key == (1002, "web"))
    body = await (await c.get(f"/v1/services/{container.name}")).json()
    assert (body["appId"], body["serviceName"]) == (1002, "web")


async def test_services_list_filters_by_app(api: tuple[Client, ApiContext, MemoryEngine]) -> None:
    c, _, _ = api
    everything = (await (await c.get("/v1/services")).json())["services"]
    assert [(s["appId"], s["ref"]) for s in everything] == [
        (1001, "web-1"),
        (1001, "api-2"),
        (1002, "web-3"),
    ]
    only = (await (await c.get("/v1/services", params={"appId": "1002"})).json())["services"]
    assert [s["ref"] for s in only] == ["web-3"]
    assert (await c.get("/v1/services", params={"appId": "x"})).status == 400
    assert (await c.get("/v1/services", params={"appId": "9"})).status == 404


async def test_config_set_validates_applies_and_resets(
    api: tuple[Client, ApiContext, MemoryEngine],
) -> None:
    c, ctx, _ = api
    entry = await (await c.put("/v1/config/LOG_LEVEL", json={"value": "debug"})).json()
    assert (entry["value"], entry["source"]) == ("debug", "override")
    assert ctx.config.settings.LOG_LEVEL == "debug"
    bad = await c.put("/v1/config/RECONCILIATION_INTERVAL_MS", json={"value": "5"})
    assert bad.status == 400 and (await bad.json())["error"] == "invalid_config_value"
    unknown = await c.put("/v1/config/NOPE", json={"value": "1"})
    assert unknown.status == 400 and (await unknown.json())["error"] == "unknown_config_key"
    assert (await c.get("/v1/config/NOPE")).status == 400
    assert (await c.put("/v1/config/LOG_LEVEL", json={"value": 3})).status == 400
    shown = (await (await c.delete("/v1/config")).json())["config"]
    assert shown["LOG_LEVEL"]["source"] == "default" and ctx.config.settings.LOG_LEVEL == "info"


async def test_device_status_and_balena_routes(
    api: tuple[Client, ApiContext, MemoryEngine],
) -> None:
    c, _, engine = api
    device = await (await c.get("/v1/device")).json()
    assert device["apps"] == {"configured": 2, "services": 3, "running": 3, "failed": 0}
    assert device["cloud"]["state"] == "not configured" and device["engine"]["reachable"]
    assert device["metrics"]["memoryTotalBytes"] > 0
    status = await (await c.get("/v2/state/status")).json()
    assert status["appState"] == "applied" and len(status["containers"]) == 3
    ids = await (await c.get("/v2/containerId", params={"serviceName": "api"})).json()
    assert ids["containerId"] in engine.containers
    assert (await c.get("/v2/containerId", params={"serviceName": "x"})).status == 404


async def test_diagnostics_report_each_check(api: tuple[Client, ApiContext, MemoryEngine]) -> None:
    c, _, _ = api
    body = await (await c.get("/v1/diagnostics")).json()
    checks = {check["name"]: check["status"] for check in body["checks"]}
    assert checks["database"] == "ok" and checks["docker"] == "ok"
    assert checks["cloud"] == "not configured" and checks["mqtt"] == "not configured"
    assert body["ok"] is True


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("post", "/v1/apps/abc/stop", None),
        ("post", "/v1/apps/99/stop", None),
        ("post", "/v1/restart", {"appId": "x"}),
        ("post", "/v1/restart", {"appId": True}),
        ("post", "/v1/restart", [1]),
        ("post", "/v2/applications/1001/stop-service", {"serviceName": 5}),
        ("post", "/v2/applications/1001/stop-service", {"serviceName": "nope"}),
        ("post", "/v1/factory-reset", {"confirm": "yes"}),
        ("post", "/v1/services/api/explode", None),
    ],
)
async def test_bad_input_gets_a_4xx_and_changes_nothing(
    api: tuple[Client, ApiContext, MemoryEngine], method: str, path: str, body: Any
) -> None:
    c, ctx, engine = api
    before = (dict(engine.containers), ctx.targets.overrides())
    response = await getattr(c, method)(path, json=body)
    assert 400 <= response.status < 500
    assert (await response.json())["message"]
    assert (dict(engine.containers), ctx.targets.overrides()) == before


async def test_invalid_json_bodies_are_refused(
    api: tuple[Client, ApiContext, MemoryEngine],
) -> None:
    c, _, _ = api
    response = await c.post(
        "/v1/restart", data=b"{nope", headers={"Content-Type": "application/json"}
    )
    assert response.status == 400 and "JSON" in (await response.json())["message"]

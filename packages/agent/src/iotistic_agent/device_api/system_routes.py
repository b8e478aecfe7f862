"""Device status, balena-compatible device routes, diagnostics, restart and factory reset."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from .. import __version__
from ..diagnostics import run_diagnostics
from ..engine.protocol import EngineUnavailable
from ..orchestrator.model import EngineSnapshot
from ..orchestrator.status import applications_state, is_settled
from .context import ApiContext, api_context
from .errors import ApiError
from .params import json_object
from .shared import shared

routes = web.RouteTableDef()


async def _snapshot_or_none(request: web.Request) -> EngineSnapshot | None:
    try:
        return await shared(request).snapshot()
    except EngineUnavailable:
        return None


def _services(ctx: ApiContext, snapshot: EngineSnapshot | None) -> list[dict[str, Any]]:
    """Every service's state (as /v2/applications/state reports it), with its app id."""
    state = applications_state(ctx.targets.current_target(), snapshot, ctx.reconciler.failures)
    return [
        {**s, "appId": app["appId"]} for app in state.values() for s in app["services"].values()
    ]


@routes.get("/v1/device")
async def device(request: web.Request) -> web.Response:
    ctx = api_context(request)
    identity = ctx.devices.identity()
    snapshot = await _snapshot_or_none(request)
    services = _services(ctx, snapshot)
    failed = {"ImagePullBackOff", "ErrImagePull", "StartFailure", "CrashLoopBackOff"}
    endpoint = ctx.config.settings.CLOUD_API_ENDPOINT
    body = {
        "uuid": identity.uuid,
        "deviceName": identity.name,
        "provisioned": identity.provisioned,
        "provisioningState": "provisioned" if identity.provisioned else "unprovisioned",
        "agentVersion": __version__,
        "cloud": (
            ctx.cloud.status()
            if ctx.cloud is not None
            else {"state": "not configured", "endpoint": endpoint}
        ),
        "mqtt": ctx.mqtt.status() if ctx.mqtt is not None else {"state": "not configured"},
        "logShipping": (
            ctx.log_shipping.status() if ctx.log_shipping is not None else {"state": "stopped"}
        ),
        "engine": {"reachable": (await shared(request).health.engine()).ok},
        "targetVersion": ctx.targets.stored.version,
        "targetRefused": refused.as_json() if (refused := ctx.targets.refused) else None,
        "apps": {
            "configured": len(ctx.targets.current_target()),
            "services": len(services),
            "running": sum(1 for s in services if s["status"] == "Running"),
            "failed": sum(1 for s in services if s["status"] in failed),
        },
        "metrics": await shared(request).metrics.get(),
    }
    return web.json_response(body)


@routes.get("/v2/device/name")
async def device_name(request: web.Request) -> web.Response:
    identity = api_context(request).devices.identity()
    return web.json_response({"status": "success", "deviceName": identity.name})


@routes.get("/v2/state/status")
async def state_status(request: web.Request) -> web.Response:
    ctx = api_context(request)
    services = _services(ctx, await shared(request).snapshot())
    fields = ("appId", "serviceName", "status", "containerId", "image")
    containers = [{f: s[f] for f in fields} for s in services]
    settled = all(is_settled(s) for s in services)
    return web.json_response(
        {
            "status": "success",
            "appState": "applied" if settled else "applying",
            "containers": containers,
        }
    )


@routes.get("/v2/containerId")
async def container_id(request: web.Request) -> web.Response:
    ctx = api_context(request)
    pairs = [
        (s["serviceName"], s["containerId"])
        for s in _services(ctx, await shared(request).snapshot())
    ]
    wanted = request.query.get("serviceName") or request.query.get("service")
    if wanted is None:
        return web.json_response({"status": "success", "services": dict(pairs)})
    found = [cid for name, cid in pairs if name == wanted]
    if not found:
        raise ApiError(404, "not_found", f"no service {wanted!r} in the target state")
    if len(found) > 1:
        raise ApiError(409, "conflict", f"{wanted!r} exists in several apps; use /v1/services")
    return web.json_response({"status": "success", "containerId": found[0]})


@routes.get("/v1/diagnostics")
async def diagnostics(request: web.Request) -> web.Response:
    ctx = api_context(request)
    mqtt = ctx.mqtt.status() if ctx.mqtt is not None else None
    views = shared(request)
    checks = await run_diagnostics(
        ctx.database, views.health, views.snapshot, ctx.config.settings, mqtt
    )
    ok = all(c["status"] != "fail" for c in checks)
    return web.json_response({"ok": ok, "checks": checks})


@routes.post("/v1/agent/restart")
async def restart_agent(request: web.Request) -> web.Response:
    ctx = api_context(request)
    if ctx.request_restart is None:
        raise ApiError(503, "not_available", "restart is not available in this mode")
    # After the response is on its way: shutdown waits for in-flight requests.
    asyncio.get_running_loop().call_soon(ctx.request_restart)
    return web.json_response({"status": "success"}, status=202)


@routes.post("/v1/factory-reset")
async def factory_reset(request: web.Request) -> web.Response:
    ctx = api_context(request)
    if (await json_object(request)).get("confirm") is not True:
        raise ApiError(400, "bad_request", 'factory reset needs {"confirm": true}')
    if ctx.request_factory_reset is None:
        raise ApiError(503, "not_available", "factory reset is not available in this mode")
    asyncio.get_running_loop().call_soon(ctx.request_factory_reset)
    return web.json_response({"status": "success"}, status=202)

"""Service-level listing, info and actions, addressed by the references `services list` shows."""

from __future__ import annotations

from aiohttp import web

from .context import api_context
from .errors import ApiError
from .params import parse_app_id
from .refs import resolve_ref
from .shared import shared
from .views import service_info

routes = web.RouteTableDef()


@routes.get("/v1/services")
async def list_services(request: web.Request) -> web.Response:
    ctx = api_context(request)
    raw = request.query.get("appId")
    wanted = None if raw is None else parse_app_id(raw)
    target = ctx.targets.current_target()
    if wanted is not None and wanted not in target:
        raise ApiError(404, "not_found", f"no app {wanted} in the target state")
    snapshot = await shared(request).snapshot()
    services = [
        service_info(ctx, app, spec, snapshot)
        for app in sorted(target.values(), key=lambda a: a.app_id)
        if wanted is None or app.app_id == wanted
        for spec in app.services
    ]
    return web.json_response({"services": services})


@routes.get("/v1/services/{ref}")
async def get_service(request: web.Request) -> web.Response:
    ctx = api_context(request)
    found = await resolve_ref(request, request.match_info["ref"])
    return web.json_response(service_info(ctx, found.app, found.spec, found.snapshot))


@routes.post("/v1/services/{ref}/{action:stop|start|restart}")
async def act_on_service(request: web.Request) -> web.Response:
    ctx = api_context(request)
    found = await resolve_ref(request, request.match_info["ref"])
    action = request.match_info["action"]
    key = found.spec.key
    if action == "stop":
        await ctx.control.stop([key])
    elif action == "start":
        await ctx.control.start([key])
    else:
        await ctx.control.restart_service(key)
    return web.json_response({"status": "success"})

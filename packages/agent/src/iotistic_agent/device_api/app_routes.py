"""App-level actions (balena-supervisor compatible paths)."""

from __future__ import annotations

from aiohttp import web

from .context import ApiContext, api_context
from .errors import ApiError
from .params import app_from_path, app_id_field, json_object, string_field
from .shared import shared
from .views import app_info

routes = web.RouteTableDef()

OK = {"status": "success"}


@routes.get("/v1/apps/{appId}")
async def get_app(request: web.Request) -> web.Response:
    ctx = api_context(request)
    app = app_from_path(request, ctx)
    return web.json_response(app_info(ctx, app, await shared(request).snapshot()))


@routes.post("/v1/apps/{appId}/stop")
async def stop_app(request: web.Request) -> web.Response:
    ctx = api_context(request)
    app = app_from_path(request, ctx)
    await ctx.control.stop([s.key for s in app.services])
    return web.json_response(OK)


@routes.post("/v1/apps/{appId}/start")
async def start_app(request: web.Request) -> web.Response:
    ctx = api_context(request)
    app = app_from_path(request, ctx)
    await ctx.control.start([s.key for s in app.services])
    return web.json_response(OK)


@routes.post("/v1/restart")
async def restart_app_v1(request: web.Request) -> web.Response:
    ctx = api_context(request)
    app_id = app_id_field(await json_object(request))
    if app_id not in ctx.targets.declared_target():
        raise ApiError(404, "not_found", f"no app {app_id} in the target state")
    await ctx.control.recreate_app(app_id)
    return web.json_response(OK)


@routes.post("/v2/applications/{appId}/restart")
async def restart_app(request: web.Request) -> web.Response:
    ctx = api_context(request)
    await ctx.control.recreate_app(app_from_path(request, ctx).app_id)
    return web.json_response(OK)


@routes.post("/v2/applications/{appId}/purge")
async def purge_app(request: web.Request) -> web.Response:
    ctx = api_context(request)
    await ctx.control.purge_app(app_from_path(request, ctx).app_id)
    return web.json_response(OK)


async def _service_of_app(request: web.Request) -> tuple[ApiContext, tuple[int, str]]:
    ctx = api_context(request)
    app = app_from_path(request, ctx)
    name = string_field(await json_object(request), "serviceName")
    if app.service(name) is None:
        raise ApiError(404, "not_found", f"app {app.app_id} has no service {name!r}")
    return ctx, (app.app_id, name)


@routes.post("/v2/applications/{appId}/stop-service")
async def stop_service(request: web.Request) -> web.Response:
    ctx, key = await _service_of_app(request)
    await ctx.control.stop([key])
    return web.json_response(OK)


@routes.post("/v2/applications/{appId}/start-service")
async def start_service(request: web.Request) -> web.Response:
    ctx, key = await _service_of_app(request)
    await ctx.control.start([key])
    return web.json_response(OK)


@routes.post("/v2/applications/{appId}/restart-service")
async def restart_service(request: web.Request) -> web.Response:
    ctx, key = await _service_of_app(request)
    await ctx.control.restart_service(key)
    return web.json_response(OK)

"""Runtime configuration: show, get, set (validated, applied at once), reset."""

from __future__ import annotations

from aiohttp import web

from ..runtime_config import InvalidConfigValue, UnknownConfigKey
from .context import api_context
from .errors import ApiError
from .params import json_object

routes = web.RouteTableDef()


@routes.get("/v1/config")
async def show(request: web.Request) -> web.Response:
    entries = api_context(request).config.entries()
    return web.json_response({"config": {k: e.as_json() for k, e in entries.items()}})


def _unknown(key: str) -> ApiError:
    return ApiError(400, "unknown_config_key", f"unknown config key {key!r}")


@routes.get("/v1/config/{key}")
async def get(request: web.Request) -> web.Response:
    key = request.match_info["key"]
    try:
        entry = api_context(request).config.get(key)
    except UnknownConfigKey as exc:
        raise _unknown(key) from exc
    return web.json_response(entry.as_json())


@routes.put("/v1/config/{key}")
async def put(request: web.Request) -> web.Response:
    key = request.match_info["key"]
    value = (await json_object(request)).get("value")
    if not isinstance(value, str):
        raise ApiError(400, "bad_request", 'body must be {"value": "<text>"}')
    try:
        entry = api_context(request).config.set(key, value)
    except UnknownConfigKey as exc:
        raise _unknown(key) from exc
    except InvalidConfigValue as exc:
        raise ApiError(400, "invalid_config_value", str(exc)) from exc
    return web.json_response(entry.as_json())


@routes.delete("/v1/config")
async def reset(request: web.Request) -> web.Response:
    entries = api_context(request).config.reset()
    return web.json_response({"config": {k: e.as_json() for k, e in entries.items()}})

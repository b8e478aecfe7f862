"""Reading path parameters and JSON bodies with clear 400/404 errors."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from ..orchestrator.model import AppSpec
from .context import ApiContext
from .errors import ApiError


def app_from_path(request: web.Request, ctx: ApiContext) -> AppSpec:
    raw = request.match_info["appId"]
    if not raw.isdigit() or len(raw) > 18:
        raise ApiError(400, "bad_request", f"appId must be a positive integer, got {raw!r}")
    app = ctx.targets.declared_target().get(int(raw))
    if app is None:
        raise ApiError(404, "not_found", f"no app {raw} in the target state")
    return app


async def json_object(request: web.Request) -> dict[str, Any]:
    raw = await request.read()
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, "bad_request", f"body is not valid JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise ApiError(400, "bad_request", "body must be a JSON object")
    return body


def string_field(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value:
        raise ApiError(400, "bad_request", f"{name} must be a non-empty string")
    return value


def app_id_field(body: dict[str, Any]) -> int:
    value = body.get("appId")
    if isinstance(value, str) and value.isdigit() and len(value) <= 18:
        return int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ApiError(400, "bad_request", "appId must be a positive integer")
    return value

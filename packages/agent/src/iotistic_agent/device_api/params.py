"""Reading path parameters and JSON bodies with clear 400/404 errors."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from ..orchestrator.model import AppSpec
from .context import ApiContext
from .errors import ApiError

MAX_ID = 2**63 - 1  # the largest id a target may hold


def is_app_id(text: str) -> bool:
    """Plain ASCII digits only: str.isdigit() also accepts characters int() refuses."""
    return 0 < len(text) <= 19 and text.isascii() and text.isdigit() and int(text) <= MAX_ID


def parse_app_id(text: str) -> int:
    if not is_app_id(text):
        raise ApiError(400, "bad_request", f"appId must be a positive integer, got {text!r}")
    return int(text)


def app_from_path(request: web.Request, ctx: ApiContext) -> AppSpec:
    raw = request.match_info["appId"]
    app = ctx.targets.declared_target().get(parse_app_id(raw))
    if app is None:
        raise ApiError(404, "not_found", f"no app {raw} in the target state")
    return app


async def json_object(request: web.Request) -> dict[str, Any]:
    raw = await request.read()
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
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
    if isinstance(value, str) and is_app_id(value):
        return int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_ID:
        raise ApiError(400, "bad_request", "appId must be a positive integer")
    return value

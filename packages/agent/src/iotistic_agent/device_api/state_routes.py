"""Target and current state routes (balena-supervisor compatible paths where they exist)."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web
from iotistic_contracts import TargetStateError, parse_target_state

from .. import __version__
from ..orchestrator.status import applications_state
from ..policy import TargetRefused
from .context import api_context
from .errors import ApiError
from .shared import shared

routes = web.RouteTableDef()


@routes.get("/ping")
async def ping(request: web.Request) -> web.Response:
    return web.Response(text="OK")


@routes.get("/v1/healthy")
async def healthy(request: web.Request) -> web.Response:
    checks = await shared(request).health.checks()
    failed = [c for c in checks if not c.ok]
    if failed:
        message = "; ".join(c.message for c in failed)
        raise ApiError(503, failed[0].error, message, checks=[c.as_json() for c in checks])
    return web.Response(text="OK")


@routes.get("/v2/version")
async def version(request: web.Request) -> web.Response:
    return web.json_response({"status": "success", "version": __version__})


@routes.get("/v2/local/target-state")
async def get_target_state(request: web.Request) -> web.Response:
    stored = api_context(request).targets.stored
    body = json.loads(stored.target.canonical_json())
    headers = {"ETag": f'"{stored.state_hash}"', "X-Target-Version": str(stored.version)}
    return web.json_response(body, headers=headers)


@routes.post("/v2/local/target-state")
async def set_target_state(request: web.Request) -> web.Response:
    ctx = api_context(request)
    raw = await request.read()
    try:
        target = parse_target_state(raw)
    except TargetStateError as exc:
        raise ApiError(400, "invalid_target_state", exc.message, errors=exc.errors) from exc
    try:
        changed = ctx.targets.save(target, source="local")
    except TargetRefused as exc:
        refusals = [r.as_json() for r in exc.refusals]
        raise ApiError(400, "target_refused", str(exc), refusals=refusals) from exc
    except ValueError as exc:
        raise ApiError(400, "invalid_target_state", str(exc)) from exc
    if changed:
        ctx.reconciler.wake()
    stored = ctx.targets.stored
    return web.json_response(
        {
            "status": "success",
            "changed": changed,
            "version": stored.version,
            "stateHash": stored.state_hash,
        }
    )


@routes.get("/v2/applications/state")
async def applications(request: web.Request) -> web.Response:
    ctx = api_context(request)
    body: dict[str, Any] = applications_state(
        ctx.targets.current_target(), ctx.reconciler.last_snapshot, ctx.reconciler.failures
    )
    return web.json_response(body)

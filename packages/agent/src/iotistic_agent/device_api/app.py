"""The Device API application. Route modules register here; middlewares (errors now, the
API-key check later) wrap every route in one place."""

from __future__ import annotations

from aiohttp import web

from . import state_routes
from .context import CONTEXT_KEY, ApiContext
from .errors import json_errors

MAX_BODY_BYTES = 1024 * 1024


def create_app(context: ApiContext) -> web.Application:
    app = web.Application(middlewares=[json_errors], client_max_size=MAX_BODY_BYTES)
    app[CONTEXT_KEY] = context
    app.add_routes(state_routes.routes)
    return app

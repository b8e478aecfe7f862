"""The Device API application. Route modules register here; middlewares (errors now, the
API-key check later) wrap every route in one place."""

from __future__ import annotations

from aiohttp import web

from . import (
    anomaly_routes,
    app_routes,
    config_routes,
    log_routes,
    metrics_routes,
    provisioning_routes,
    sensor_routes,
    service_routes,
    simulation_routes,
    state_routes,
    system_routes,
)
from .auth import auth_middleware
from .context import ApiContext
from .engine_view import DEFAULT_MAX_AGE_S
from .errors import json_errors
from .shared import attach

MAX_BODY_BYTES = 1024 * 1024


def create_app(
    context: ApiContext, api_key: str, *, snapshot_max_age_s: float = DEFAULT_MAX_AGE_S
) -> web.Application:
    """`snapshot_max_age_s`: how old the engine state routes show may be (see engine_view)."""
    # Errors first, so that even a refused request gets the JSON error shape.
    app = web.Application(
        middlewares=[json_errors, auth_middleware(api_key)], client_max_size=MAX_BODY_BYTES
    )
    attach(app, context, snapshot_max_age_s)
    modules = (
        state_routes,
        app_routes,
        service_routes,
        config_routes,
        system_routes,
        log_routes,
        provisioning_routes,
        sensor_routes,
        simulation_routes,
        metrics_routes,
        anomaly_routes,
    )
    for module in modules:
        app.add_routes(module.routes)
    return app

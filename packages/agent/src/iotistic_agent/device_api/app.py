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
from .context import CONTEXT_KEY, ApiContext
from .errors import json_errors

MAX_BODY_BYTES = 1024 * 1024


def create_app(context: ApiContext, api_key: str) -> web.Application:
    # Errors first, so that even a refused request gets the JSON error shape.
    app = web.Application(
        middlewares=[json_errors, auth_middleware(api_key)], client_max_size=MAX_BODY_BYTES
    )
    app[CONTEXT_KEY] = context
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

"""The application factory: ``create_app(settings)`` for uvicorn, tests and the CLI's serve."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from ..admin_token import admin_token
from ..clock import Clock, utc_now
from ..composition import build_cloud
from ..db.engine import Database
from ..db.migrate import upgrade
from ..limits import MAX_BODY_BYTES
from ..settings import Settings
from . import admin_routes, device_routes, health_routes, log_routes, provisioning_routes
from .admission import AdmissionMiddleware
from .body_limit import BodyLimitMiddleware
from .errors import install_error_handlers
from .openapi import install_openapi

log = logging.getLogger("iotistic.cloud")


def create_app(
    settings: Settings,
    *,
    database: Database | None = None,
    clock: Clock = utc_now,
    migrate_on_start: bool = True,
    max_body_bytes: int = MAX_BODY_BYTES,
) -> FastAPI:
    """``database``: share one (tests); otherwise the app owns one and disposes of it."""
    cloud = build_cloud(settings, database, clock)
    token = admin_token(settings)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if migrate_on_start:
            await upgrade(cloud.database.engine)
        link_task: asyncio.Task[None] | None = None
        # Expired logs of devices that stopped uploading (uploads prune their own).
        sweep_task = asyncio.create_task(cloud.logs.sweep_expired(), name="log-expiry")
        if cloud.mqtt is None:
            log.info("MQTT broker management is off (MQTT_PASSWORD is not set)")
        else:
            # One connection for this process: device accounts, state reports, update triggers.
            link_task = asyncio.create_task(cloud.mqtt.run(), name="mqtt-link")
        try:
            yield
        finally:
            sweep_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sweep_task
            if link_task is not None:
                link_task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await link_task
            if database is None:
                await cloud.database.dispose()

    # No /docs or /redoc: they load their scripts from a CDN. /openapi.json stays.
    app = FastAPI(title="iotistic-cloud", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.cloud = cloud
    app.state.admin_token = token
    install_error_handlers(app)
    app.add_route(device_routes.POLL_PATH, device_routes.poll_target, methods=["GET"])
    install_openapi(app)
    for module in (health_routes, provisioning_routes, device_routes, admin_routes):
        app.include_router(module.router)
    app.include_router(log_routes.device_router)
    app.include_router(log_routes.admin_router)
    app.add_middleware(BodyLimitMiddleware, max_bytes=max_body_bytes)
    # Added last, so it runs first: a refused request costs as little as possible.
    app.add_middleware(
        AdmissionMiddleware,
        max_in_flight=settings.max_concurrent_requests,
        retry_after_s=settings.overload_retry_after_s,
    )
    return app

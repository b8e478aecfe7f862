"""``GET /health``: 200 when the database answers, 503 when it does not (for load balancers)."""

from __future__ import annotations

import asyncio
import logging
from typing import Final

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text

from .state import cloud_of

HEALTH_TIMEOUT_S: Final = 3.0
log = logging.getLogger("iotistic.cloud.health")
router = APIRouter(tags=["health"])


@router.get("/health")
async def health(request: Request) -> JSONResponse:
    engine = cloud_of(request).database.reads
    try:
        async with asyncio.timeout(HEALTH_TIMEOUT_S), engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except Exception as exc:  # any failure means "not ready"; the reason goes to the log
        log.warning("health check: database unreachable: %s", type(exc).__name__)
        return JSONResponse({"status": "error", "database": "unreachable"}, status_code=503)
    return JSONResponse({"status": "ok", "database": "ok"})

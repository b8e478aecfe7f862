"""``GET /health``: 200 when the database answers, 503 when it does not (for load balancers)."""

from __future__ import annotations

import asyncio
from typing import Final

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text

from ..db.availability import unavailable_reason
from ..services.errors import UNAVAILABLE_RETRY_AFTER_S
from .state import cloud_of

HEALTH_TIMEOUT_S: Final = 3.0
router = APIRouter(tags=["health"])


@router.get("/health")
async def health(request: Request) -> JSONResponse:
    database = cloud_of(request).database
    try:
        async with asyncio.timeout(HEALTH_TIMEOUT_S), database.reads.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except Exception as exc:  # any failure means "not ready"; the reason goes to the log
        database.outage.failed(unavailable_reason(exc) or type(exc).__name__)
        return JSONResponse(
            {"status": "error", "database": "unreachable"},
            status_code=503,
            headers={"Retry-After": str(UNAVAILABLE_RETRY_AFTER_S)},
        )
    return JSONResponse({"status": "ok", "database": "ok"})

"""Every Device API error is JSON: {"error": <code>, "message": <text for people>}."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import typedefs, web

from ..engine.protocol import EngineError, EngineUnavailable
from ..store.errors import StorageError, StorageFull
from .context import api_context
from .shared import shared

log = logging.getLogger("iotistic.device_api")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Middleware = typedefs.Middleware


def error_response(status: int, error: str, message: str, **extra: Any) -> web.Response:
    return web.json_response({"error": error, "message": message, **extra}, status=status)


class ApiError(Exception):
    def __init__(self, status: int, error: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.error = error
        self.message = message
        self.extra = extra


_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
}


@web.middleware
async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as exc:
        return error_response(exc.status, exc.error, exc.message, **exc.extra)
    except StorageError as exc:
        return _storage_error(request, exc)
    except EngineUnavailable as exc:
        return error_response(503, "engine_unavailable", f"container engine unavailable: {exc}")
    except EngineError as exc:
        return error_response(502, "engine_error", f"container engine error: {exc}")
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = _HTTP_CODES.get(exc.status, "http_error")
        return error_response(exc.status, code, exc.reason)
    except Exception:
        log.exception("unhandled error in %s %s", request.method, request.path)
        return error_response(500, "internal_error", "internal error, see the agent log")


def _storage_error(request: web.Request, exc: StorageError) -> web.Response:
    """507 for a full disk, naming it; 503 for a database that takes no writes. Either way
    nothing was stored, and /v1/healthy says so too."""
    health = shared(request).health
    health.write_failed(str(exc))
    database = api_context(request).config.settings.DATABASE_PATH
    unaffected = "running containers are not affected"
    if isinstance(exc, StorageFull):
        disk = health.disk()
        where = (
            disk.message if not disk.ok else f"writing {database} failed ({exc}); {disk.message}"
        )
        message = f"nothing was stored: {where}; free some space and try again ({unaffected})"
        return error_response(507, "insufficient_storage", message)
    message = f"nothing was stored: {database} takes no writes ({exc}); {unaffected}"
    return error_response(503, "database_unwritable", message)

"""Every error is JSON ``{"error": message}`` (plus ``errors`` with field paths for bad input).

Validation messages never echo the input: it may hold a provisioning key or a secret.
"""

from __future__ import annotations

import logging
from typing import Any, Final

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import InterfaceError, OperationalError
from starlette.exceptions import HTTPException

from ..services import errors as svc
from ..services.validation import field_errors, invalid_input

log = logging.getLogger("iotistic.cloud.api")

STATUS: Final[dict[type[svc.ServiceError], int]] = {
    svc.InvalidInput: 400,
    svc.Unauthorized: 401,
    svc.Forbidden: 403,
    svc.NotFound: 404,
    svc.Conflict: 409,
    svc.Gone: 410,
    svc.TooLarge: 413,
    svc.UnsupportedEncoding: 415,
    svc.TooManyRequests: 429,
    svc.Unavailable: 503,
}
# The request part a parameter came from; the body's fields are named without a prefix.
_SOURCES: Final = ("body", "path", "query", "header", "cookie")


def error_response(
    status: int, message: str, errors: list[dict[str, str]] | None = None
) -> JSONResponse:
    content: dict[str, Any] = {"error": message}
    if errors:
        content["errors"] = errors
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(content, status_code=status, headers=headers)


async def _service_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, svc.ServiceError)
    status = next((code for kind, code in STATUS.items() if isinstance(exc, kind)), 400)
    return error_response(status, exc.message, exc.errors)


async def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    raw = [{**err, "loc": _field_loc(err)} for err in exc.errors()]
    error = invalid_input("invalid request", field_errors(raw))
    return error_response(400, error.message, error.errors)


def _field_loc(err: dict[str, Any]) -> tuple[int | str, ...]:
    # FastAPI puts the character offset of a JSON syntax error where a field would be.
    if err["type"] == "json_invalid":
        return ()
    loc = tuple(err["loc"])
    return loc[1:] if loc and loc[0] in _SOURCES else loc


async def _http_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    response = error_response(exc.status_code, str(exc.detail))
    if exc.headers:
        response.headers.update(exc.headers)
    return response


async def _database_unavailable(request: Request, exc: Exception) -> JSONResponse:
    # Not the client's fault and usually brief (restart, failover, a busy SQLite file):
    # 503 tells devices and load balancers to retry.
    log.warning(
        "database unavailable on %s %s: %s", request.method, request.url.path, type(exc).__name__
    )
    return error_response(503, "database unavailable; try again later")


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    # The traceback goes to the log; the client learns nothing about internals.
    log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(500, "internal server error")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(svc.ServiceError, _service_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
    for kind in (OperationalError, InterfaceError, OSError, TimeoutError):
        app.add_exception_handler(kind, _database_unavailable)
    app.add_exception_handler(Exception, _unexpected)

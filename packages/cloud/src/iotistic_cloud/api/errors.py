"""Every error is JSON ``{"error": message}`` (plus ``errors`` with field paths for bad input).

Validation messages never echo the input: it may hold a provisioning key or a secret.
"""

from __future__ import annotations

import logging
from typing import Any, Final

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect

from ..db.availability import DatabaseBusy, unavailable_reason
from ..services import errors as svc
from ..services.validation import field_errors, invalid_input
from .state import cloud_of

log = logging.getLogger("iotistic.cloud.api")

STATUS: Final[dict[type[svc.ServiceError], int]] = {
    svc.InvalidInput: 400,
    svc.Unauthorized: 401,
    svc.Forbidden: 403,
    svc.NotFound: 404,
    svc.Conflict: 409,
    svc.Gone: 410,
    svc.PreconditionFailed: 412,
    svc.TooLarge: 413,
    svc.UnsupportedEncoding: 415,
    svc.TooManyRequests: 429,
    svc.Unavailable: 503,
}
# The request part a parameter came from; the body's fields are named without a prefix.
_SOURCES: Final = ("body", "path", "query", "header", "cookie")


DATABASE_UNAVAILABLE: Final = "database unavailable; try again later"


def error_response(
    status: int,
    message: str,
    errors: list[dict[str, str]] | None = None,
    retry_after_s: int | None = None,
) -> JSONResponse:
    content: dict[str, Any] = {"error": message}
    if errors:
        content["errors"] = errors
    headers: dict[str, str] = {}
    if status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    if retry_after_s is not None:
        headers["Retry-After"] = str(retry_after_s)
    return JSONResponse(content, status_code=status, headers=headers)


async def _service_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, svc.ServiceError)
    status = next((code for kind, code in STATUS.items() if isinstance(exc, kind)), 400)
    return error_response(status, exc.message, exc.errors, exc.retry_after_s)


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


def database_unavailable(request: Request, reason: str) -> JSONResponse:
    """503 with Retry-After; the outage is logged once, not once per request."""
    cloud_of(request).database.outage.failed(reason)
    return error_response(503, DATABASE_UNAVAILABLE, retry_after_s=svc.UNAVAILABLE_RETRY_AFTER_S)


async def _database_error(request: Request, exc: Exception) -> JSONResponse:
    # An outage is not the client's fault and usually brief (restart, failover, a busy
    # SQLite file, an exhausted pool): 503 tells devices and load balancers to retry.
    reason = unavailable_reason(exc)
    if reason is None:
        return await _unexpected(request, exc)
    return database_unavailable(request, reason)


async def _client_gone(request: Request, _exc: Exception) -> None:
    # Nobody is left to answer: not an error of the cloud (a device timed out, a CLI quit).
    log.debug("client went away during %s %s", request.method, request.url.path)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    # The traceback goes to the log; the client learns nothing about internals.
    log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(500, "internal server error")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(svc.ServiceError, _service_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(ClientDisconnect, _client_gone)  # type: ignore[arg-type]
    for kind in (DBAPIError, PoolTimeout, DatabaseBusy, OSError, TimeoutError):
        app.add_exception_handler(kind, _database_error)
    app.add_exception_handler(Exception, _unexpected)

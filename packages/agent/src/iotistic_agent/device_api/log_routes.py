"""Log routes: a service's container output and the agent's own log, as NDJSON (one JSON
object per line), optionally followed live until the client goes away."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any, TypeVar

from aiohttp import web

from ..engine.protocol import (
    ContainerLogLine,
    ContainerNotFound,
    EngineError,
    EngineUnavailable,
)
from ..logs.ring import LogEntry
from .context import api_context
from .errors import ApiError
from .refs import resolve_ref

log = logging.getLogger("iotistic.device_api.logs")

routes = web.RouteTableDef()

T = TypeVar("T")

NDJSON = "application/x-ndjson"
DEFAULT_LINES = 100
MAX_LINES = 10_000
# Errors the engine reports at once (container gone, log driver that cannot be read) still
# become proper HTTP errors; a quiet followed container gets its headers after this wait.
FIRST_LINE_WAIT_S = 0.5
# The server does not cancel a handler when its client disconnects: look this often.
DISCONNECT_POLL_S = 1.0
_INTEGER = re.compile(r"[0-9]{1,9}")
_BOOLEANS = {"true": True, "1": True, "false": False, "0": False}


# --- query parameters -------------------------------------------------------------------


def count_param(request: web.Request, name: str, default: int = DEFAULT_LINES) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    if not _INTEGER.fullmatch(raw) or int(raw) > MAX_LINES:
        raise ApiError(
            400, "bad_request", f"{name} must be an integer from 0 to {MAX_LINES}, got {raw[:40]!r}"
        )
    return int(raw)


def bool_param(request: web.Request, name: str, default: bool = False) -> bool:
    raw = request.query.get(name)
    if raw is None:
        return default
    value = _BOOLEANS.get(raw.lower())
    if value is None:
        raise ApiError(400, "bad_request", f"{name} must be true, false, 1 or 0, got {raw[:40]!r}")
    return value


# --- routes -----------------------------------------------------------------------------


@routes.get("/v1/services/{ref}/logs")
async def service_logs(request: web.Request) -> web.StreamResponse:
    ctx = api_context(request)
    tail = count_param(request, "tail")
    follow = bool_param(request, "follow")
    try:
        service = await resolve_ref(request, request.match_info["ref"])
    except EngineError as exc:
        raise _engine_api_error(exc) from exc
    name = f"{service.app_id}/{service.service_name}"
    if service.container_id is None:
        raise ApiError(
            404,
            "not_found",
            f"service {name} has no container (not created yet, or removed): no logs to show",
        )
    lines = ctx.engine.container_logs(service.container_id, tail=tail, follow=follow)
    return await stream_ndjson(
        request,
        lines,
        encode_container_line,
        what=f"logs of {name}",
        first_wait_s=FIRST_LINE_WAIT_S,
    )


@routes.get("/v1/logs")
async def agent_logs(request: web.Request) -> web.StreamResponse:
    ctx = api_context(request)
    n = count_param(request, "n")
    follow = bool_param(request, "follow")
    ring = ctx.log_ring
    if ring is None:
        raise ApiError(503, "not_available", "the agent's log is not kept in this mode")
    if not follow:
        return web.Response(body=_lines(ring.tail(n), encode_agent_entry), content_type=NDJSON)
    async with ring.follow() as queue:
        # No await between subscribing and reading the ring: nothing lost, nothing twice.
        entries = _backlog_then_queue(ring.tail(n), queue)
        return await stream_ndjson(request, entries, encode_agent_entry, what="agent log")


# --- NDJSON -----------------------------------------------------------------------------


def encode_container_line(line: ContainerLogLine) -> bytes:
    item = {"timestamp": line.timestamp, "stream": line.stream, "message": line.message}
    return json.dumps(item).encode() + b"\n"


def encode_agent_entry(entry: LogEntry) -> bytes:
    item = {key: entry.get(key) for key in ("timestamp", "level", "component", "message")}
    # Present only when the record had them (a caller's context, an exception).
    item.update({key: entry[key] for key in ("context", "error", "stack") if key in entry})
    return json.dumps(item, default=str).encode() + b"\n"


def _lines(items: Iterable[T], encode: Callable[[T], bytes]) -> bytes:
    return b"".join(encode(item) for item in items)


async def _backlog_then_queue(
    backlog: list[LogEntry], queue: asyncio.Queue[LogEntry]
) -> AsyncIterator[LogEntry]:
    for entry in backlog:
        yield entry
    while True:
        yield await queue.get()


async def _next(items: AsyncIterator[T]) -> tuple[T] | None:
    try:
        return (await anext(items),)
    except StopAsyncIteration:
        return None


async def stream_ndjson(
    request: web.Request,
    items: AsyncIterator[T],
    encode: Callable[[T], bytes],
    *,
    what: str,
    first_wait_s: float = 0.0,
) -> web.StreamResponse:
    """Write `items` as NDJSON until they end or the client goes away, then close `items`.

    An engine error before the first item (within `first_wait_s`) is an HTTP error; a later
    one can only end the stream, and is logged. A client that leaves is not an error."""
    first = asyncio.create_task(_next(items))
    copier: asyncio.Task[None] | None = None
    try:
        await asyncio.wait({first}, timeout=first_wait_s)
        error = first.exception() if first.done() else None
        if isinstance(error, EngineError):
            raise _engine_api_error(error) from error
        if error is not None:
            raise error
        response = web.StreamResponse(headers={"Cache-Control": "no-store"})
        response.content_type = NDJSON
        await response.prepare(request)
        copier = asyncio.create_task(_copy(first, items, encode, response))
        while not copier.done():
            await asyncio.wait({copier}, timeout=DISCONNECT_POLL_S)
            if _client_gone(request):
                break
        if copier.done():
            _report_end(copier, what)
        return response
    finally:
        for task in (first, copier):
            if task is not None and not task.done():
                task.cancel()
                await asyncio.wait({task})
        with contextlib.suppress(Exception):
            await _aclose(items)


async def _copy(
    first: asyncio.Task[tuple[T] | None],
    items: AsyncIterator[T],
    encode: Callable[[T], bytes],
    response: web.StreamResponse,
) -> None:
    got = await first
    if got is None:
        return
    try:
        await response.write(encode(got[0]))
        async for item in items:
            await response.write(encode(item))
    except ConnectionResetError:
        pass  # the client went away: nothing to report


def _report_end(copier: asyncio.Task[None], what: str) -> None:
    if copier.cancelled():
        return
    error = copier.exception()
    if isinstance(error, EngineError):
        log.warning("%s: stream ended early: %s", what, error)
    elif error is not None:
        log.error("%s: stream failed", what, exc_info=error)


def _client_gone(request: web.Request) -> bool:
    transport = request.transport
    return transport is None or transport.is_closing()


async def _aclose(items: AsyncIterator[Any]) -> None:
    close = getattr(items, "aclose", None)
    if close is not None:
        await close()


def _engine_api_error(error: EngineError) -> ApiError:
    if isinstance(error, ContainerNotFound):
        return ApiError(404, "not_found", f"the service's container is gone: {error}")
    if isinstance(error, EngineUnavailable):
        return ApiError(503, "engine_unavailable", f"container engine unavailable: {error}")
    return ApiError(502, "engine_error", str(error))

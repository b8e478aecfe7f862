"""Device logs: the device uploads NDJSON (its own key), admins query and follow them."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Annotated, Any, Final

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse
from iotistic_contracts.logs import MAX_LOG_SEQ, LogUploadResult
from iotistic_contracts.provisioning import DeviceUuid
from pydantic import BaseModel
from starlette.requests import ClientDisconnect
from starlette.types import Receive, Scope, Send

from ..db.availability import unavailable_reason
from ..services.errors import NotFound
from ..services.log_input import BadLogLine, decode_upload, is_gzip, parse_upload
from ..services.log_query import DEFAULT_LOG_LIMIT, check_limit, parse_filter
from .auth import device_key, require_admin
from .state import cloud_of

HEARTBEAT_S: Final = 15.0
log = logging.getLogger("iotistic.cloud.logs")
device_router = APIRouter(prefix="/api/v1/device", tags=["device"])
admin_router = APIRouter(
    prefix="/api/admin/v1", tags=["admin"], dependencies=[Depends(require_admin)]
)


class LogPageView(BaseModel):
    logs: list[dict[str, Any]]
    lastSeq: int


@device_router.post("/{uuid}/logs", status_code=202, response_model=LogUploadResult)
async def upload_logs(uuid: str, request: Request) -> Response:
    """Body: NDJSON of LogRecord (optionally gzip); see iotistic_contracts.logs."""
    cloud = cloud_of(request)
    # Authenticated before the body is read, so nobody else can make the cloud inflate gzip.
    uploader = await cloud.logs.authenticate(device_key(request), uuid)
    gzipped = is_gzip(request.headers.get("content-type"), request.headers.get("content-encoding"))
    data = decode_upload(await request.body(), gzipped)
    try:
        records = parse_upload(data)
    except BadLogLine as exc:
        body: dict[str, Any] = {"error": exc.message, "line": exc.line}
        if exc.field is not None:
            body["field"] = exc.field
        if exc.errors:
            body["errors"] = exc.errors
        return JSONResponse(body, status_code=400)
    result = await cloud.logs.store(uploader, records)
    return Response(result.model_dump_json(), status_code=202, media_type="application/json")


@admin_router.get("/devices/{uuid}/logs", response_model=LogPageView)
async def device_logs(
    uuid: DeviceUuid,
    request: Request,
    service: str | None = None,
    app: str | None = None,
    level: str | None = None,
    source: str | None = None,
    stream: str | None = None,
    since: str | None = None,
    until: str | None = None,
    q: str | None = None,
    after_seq: Annotated[int | None, Query(ge=0, le=MAX_LOG_SEQ)] = None,
    limit: int = DEFAULT_LOG_LIMIT,
    follow: bool = False,
) -> Response:
    """Oldest first: the newest ``limit`` matches, or the first ``limit`` after ``after_seq``.
    ``follow=true``: NDJSON, the same records, then new ones as they arrive."""
    cloud = cloud_of(request)
    where = parse_filter(
        cloud.clock(),
        service=service,
        app=app,
        level=level,
        source=source,
        stream=stream,
        since=since,
        until=until,
        text=q,
    )
    check_limit(limit)
    if follow:
        # The first page is read here, so an unknown device is a 404, not a broken stream.
        batches = cloud.logs.follow(uuid, where, limit, after_seq)
        first = await anext(batches)
        return FollowResponse(
            _ndjson(request, uuid, first, batches), media_type="application/x-ndjson"
        )
    page = await cloud.logs.query(uuid, where, limit, after_seq)
    return JSONResponse({"logs": page.records, "lastSeq": page.last_seq})


class FollowResponse(StreamingResponse):
    """A stream whose end is normal: a client that goes away mid-line is not an error."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        except ClientDisconnect:
            return


async def _ndjson(
    request: Request,
    device_uuid: str,
    first: list[dict[str, Any]],
    batches: AsyncGenerator[list[dict[str, Any]], None],
) -> AsyncIterator[bytes]:
    """One record per line; an empty line after HEARTBEAT_S without records keeps proxies
    from closing the connection. Ends when the client goes away, when the device is
    deleted, and when the database fails (the client follows again; the response has
    started, so there is no status left to say it with)."""
    if first:
        yield _lines(first)
    quiet_since = time.monotonic()
    try:
        async for batch in batches:
            if await request.is_disconnected():
                return
            if batch:
                yield _lines(batch)
                quiet_since = time.monotonic()
            elif time.monotonic() - quiet_since >= HEARTBEAT_S:
                yield b"\n"
                quiet_since = time.monotonic()
    except NotFound:
        log.info("log follow of device %s ended: the device was deleted", device_uuid)
    except Exception as exc:
        reason = unavailable_reason(exc)
        if reason is None:
            raise
        cloud_of(request).database.outage.failed(reason)
    finally:
        await batches.aclose()


def _lines(records: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in records).encode()

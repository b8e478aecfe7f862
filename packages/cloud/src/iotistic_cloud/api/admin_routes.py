"""The admin API: provisioning keys, devices, targets, report history (admin token only)."""

from __future__ import annotations

from typing import Annotated, Any, Final, Literal

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from iotistic_contracts.provisioning import DeviceUuid

from ..services.keys import NewKey
from ..services.media_types import require_json
from ..services.targets import parse_target
from ..views import (
    CreatedKeyView,
    DeviceDetail,
    DeviceSummary,
    KeyView,
    ReportView,
    TargetUpdateView,
    created_key_view,
    device_detail,
    device_summary,
    key_view,
    report_view,
)
from .auth import require_admin
from .state import cloud_of

MAX_REPORTS_PER_PAGE: Final = 1000
ETAG_HEADER: Final = {"ETag": {"description": "The target's ETag", "schema": {"type": "string"}}}
router = APIRouter(prefix="/api/admin/v1", tags=["admin"], dependencies=[Depends(require_admin)])


@router.post("/keys", status_code=201)
async def create_key(body: NewKey, request: Request) -> CreatedKeyView:
    cloud = cloud_of(request)
    now = cloud.clock()
    created = await cloud.keys.create(body, now)
    return created_key_view(created.record, created.key, now)


@router.get("/keys")
async def list_keys(request: Request) -> list[KeyView]:
    cloud = cloud_of(request)
    now = cloud.clock()
    return [key_view(key, now) for key in await cloud.keys.list()]


@router.delete("/keys/{key_id}", status_code=204)
async def revoke_key(key_id: int, request: Request) -> Response:
    cloud = cloud_of(request)
    await cloud.keys.revoke(key_id, cloud.clock())
    return Response(status_code=204)


@router.get("/devices")
async def list_devices(request: Request) -> list[DeviceSummary]:
    cloud = cloud_of(request)
    now, offline_after = cloud.clock(), cloud.settings.offline_after_s
    return [device_summary(d, now, offline_after) for d in await cloud.devices.list()]


@router.get("/devices/{uuid}", responses={200: {"headers": ETAG_HEADER}})
async def show_device(uuid: DeviceUuid, request: Request, response: Response) -> DeviceDetail:
    """With the target's ETag, for a later ``PUT .../target`` with ``If-Match``."""
    cloud = cloud_of(request)
    device = await cloud.devices.get(uuid)
    response.headers["ETag"] = device.target_etag
    return device_detail(device, cloud.clock(), cloud.settings.offline_after_s)


@router.put("/devices/{uuid}/target", responses={200: {"headers": ETAG_HEADER}})
async def set_target(
    uuid: DeviceUuid,
    request: Request,
    response: Response,
    if_match: Annotated[
        str | None,
        Header(
            alias="If-Match",
            description="Only if the target is still this one: its ETag or its version (412 "
            "otherwise).",
        ),
    ] = None,
) -> TargetUpdateView:
    cloud = cloud_of(request)
    require_json(request.headers.get("content-type"))
    target = parse_target(await request.body())
    update = await cloud.targets.set_target(uuid, target, cloud.clock(), if_match)
    response.headers["ETag"] = update.etag
    return TargetUpdateView(uuid=uuid, version=update.version, changed=update.changed)


@router.delete("/devices/{uuid}", status_code=204)
async def delete_device(uuid: DeviceUuid, request: Request) -> Response:
    await cloud_of(request).devices.delete(uuid)
    return Response(status_code=204)


@router.get("/devices/{uuid}/anomalies")
async def device_anomalies(
    uuid: DeviceUuid,
    request: Request,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    severity: Annotated[Literal["info", "warning", "critical"] | None, Query()] = None,
) -> list[dict[str, Any]]:
    """Anomalies the device detected, newest first (from its reports' summaries)."""
    return await cloud_of(request).anomalies.list(uuid, limit, severity)


@router.get("/devices/{uuid}/reports")
async def device_reports(
    uuid: DeviceUuid,
    request: Request,
    limit: Annotated[int, Query(ge=1, le=MAX_REPORTS_PER_PAGE)] = 100,
) -> list[ReportView]:
    reports = await cloud_of(request).reports.history(uuid, limit)
    return [report_view(report) for report in reports]

"""Detected anomalies: `GET /v1/anomalies` (`iotctl anomalies`)."""

from __future__ import annotations

from aiohttp import web

from .context import api_context
from .errors import ApiError

routes = web.RouteTableDef()

MAX_LIMIT = 1000
SEVERITIES = ("info", "warning", "critical")


@routes.get("/v1/anomalies")
async def anomalies(request: web.Request) -> web.Response:
    pipeline = api_context(request).anomalies
    if pipeline is None:
        raise ApiError(503, "not_available", "anomaly detection is not available in this mode")
    raw_limit = request.query.get("limit", "100")
    if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= MAX_LIMIT:
        raise ApiError(400, "bad_request", f"limit must be a whole number from 1 to {MAX_LIMIT}")
    severity = request.query.get("severity")
    if severity is not None and severity not in SEVERITIES:
        raise ApiError(400, "bad_request", "severity must be info, warning or critical")
    metric = request.query.get("metric") or None
    detections = pipeline.stored(int(raw_limit), metric, severity)
    service = pipeline.service
    return web.json_response(
        {
            "enabled": service.config.enabled,
            "monitoredSeries": service.series_count,
            "summary": service.summary_for_report(10),
            "anomalies": detections,
        }
    )

"""System metrics: `GET /v1/metrics` (JSON) and `GET /metrics` (Prometheus text).

Both need the API key like every route but the probes: a scraper sends it as
`Authorization: Bearer <key>` (Prometheus: `authorization: {credentials_file: ...}`).
The metrics tell a lot about the device (processes, addresses), so they are not public.

One collector per data directory for the whole process: its rates (CPU, disk I/O, per-process
CPU) are deltas against the previous collection, whichever route asked for it."""

from __future__ import annotations

import asyncio

from aiohttp import web

from ..telemetry import CONTENT_TYPE, MetricsCollector, SystemMetrics, prometheus_text
from ..telemetry.shared import collector_for
from .context import ApiContext, api_context

routes = web.RouteTableDef()


def _collect(ctx: ApiContext) -> tuple[SystemMetrics, MetricsCollector]:
    settings = ctx.config.settings
    collector = collector_for(settings.data_dir)
    metrics = collector.collect(top_processes=settings.COLLECT_TOP_PROCESSES)
    return metrics, collector


@routes.get("/v1/metrics")
async def metrics_json(request: web.Request) -> web.Response:
    metrics, _ = await asyncio.to_thread(_collect, api_context(request))
    return web.json_response(metrics.as_dict())


@routes.get("/metrics")
async def metrics_prometheus(request: web.Request) -> web.Response:
    metrics, collector = await asyncio.to_thread(_collect, api_context(request))
    text = prometheus_text(metrics, dict(collector.failures))
    return web.Response(body=text.encode("utf-8"), headers={"Content-Type": CONTENT_TYPE})

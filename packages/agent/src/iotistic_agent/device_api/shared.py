"""What every request shares, built once per application from its context: the engine's
recent state, the device's recent metrics and its health (one fetch serves every request of
a moment)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from aiohttp import web

from ..orchestrator.model import EngineSnapshot
from ..telemetry.shared import Summary, metrics_summary
from .context import CONTEXT_KEY, ApiContext
from .engine_view import DEFAULT_MAX_AGE_S, EngineView
from .health import Health
from .recent import Recent

# The device summary `/v1/device` shows: its CPU figure is a rate since the collection before.
METRICS_MAX_AGE_S = 1.0


@dataclass(frozen=True)
class Shared:
    engine: EngineView
    metrics: Recent[Summary]
    health: Health

    async def snapshot(self) -> EngineSnapshot:
        return await self.engine.snapshot()


def build_shared(context: ApiContext, snapshot_max_age_s: float = DEFAULT_MAX_AGE_S) -> Shared:
    """`snapshot_max_age_s` 0: every request (but those of the same moment) asks the engine."""
    data_dir = context.config.settings.data_dir

    async def summary() -> Summary:
        # A new collection each time: the age that counts is this one's.
        return await asyncio.to_thread(metrics_summary, data_dir)

    return Shared(
        engine=EngineView(context.engine, context.reconciler, snapshot_max_age_s),
        metrics=Recent(summary, METRICS_MAX_AGE_S, name="device-api-metrics"),
        health=Health(context.engine.ping, context.config.settings.DATABASE_PATH),
    )


SHARED_KEY = web.AppKey("iotistic_shared", Shared)


def attach(
    app: web.Application, context: ApiContext, snapshot_max_age_s: float = DEFAULT_MAX_AGE_S
) -> None:
    """Give an application's routes the context and what their requests share."""
    app[CONTEXT_KEY] = context
    app[SHARED_KEY] = build_shared(context, snapshot_max_age_s)


def shared(request: web.Request) -> Shared:
    return request.app[SHARED_KEY]

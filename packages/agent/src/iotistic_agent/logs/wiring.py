"""Builds log shipping from the agent's settings and parts (used by the composition root)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from ..cloud.wiring import retry_policy
from ..engine.protocol import Engine
from ..orchestrator.reconciler import Reconciler
from ..settings import AgentSettings
from ..store.device import CloudCredentials
from ..store.target_store import TargetStore
from ..while_provisioned import WhileProvisioned
from .before_remove import ReadBeforeRemove
from .shipping import LogShippingRun, ShippingSettings


def shipping_settings(settings: AgentSettings) -> ShippingSettings:
    return ShippingSettings(
        upload_interval_s=settings.CLOUD_LOG_UPLOAD_INTERVAL / 1000,
        compress=settings.LOG_COMPRESSION,
        sampling={
            "debug": settings.CLOUD_LOG_SAMPLING_RATE_DEBUG,
            "info": settings.CLOUD_LOG_SAMPLING_RATE_INFO,
            "warn": settings.CLOUD_LOG_SAMPLING_RATE_WARN,
            "error": settings.CLOUD_LOG_SAMPLING_RATE_ERROR,
        },
        max_records=settings.LOG_OUTBOX_MAX_RECORDS,
        max_bytes=settings.LOG_OUTBOX_MAX_BYTES,
        policy=retry_policy(settings),
        data_dir=settings.data_dir,
    )


def log_shipping(
    settings: Callable[[], AgentSettings],
    engine: Engine,
    reconciler: Reconciler,
    targets: TargetStore,
    before_remove: ReadBeforeRemove,
    filters: Sequence[logging.Filter] = (),
) -> WhileProvisioned[CloudCredentials, LogShippingRun]:
    """The agent's own records (sampled) and every container's output, while provisioned;
    a run started later reads the settings of its time (`iotctl config set`)."""

    def app_name(app_id: int) -> str | None:
        spec = targets.current_target().get(app_id)
        return None if spec is None else spec.app_name

    def make(credentials: CloudCredentials) -> LogShippingRun:
        return LogShippingRun(
            credentials,
            shipping_settings(settings()),
            engine,
            lambda: reconciler.last_snapshot,
            app_name,
            list(filters),
            before_remove,
        )

    def idle() -> dict[str, Any]:
        return {"state": "stopped"}

    return WhileProvisioned("log shipping", make, idle)

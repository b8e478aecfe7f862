"""Builds log shipping from the agent's settings and parts (used by the composition root)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from ..cloud.retry import RetryPolicy
from ..engine.protocol import BeforeRemove, Engine
from ..orchestrator.reconciler import Reconciler
from ..settings import AgentSettings
from ..store.device import CloudCredentials
from ..store.target_store import TargetStore
from .shipping import LogShippingRun, LogShippingService, ShippingSettings


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
        policy=RetryPolicy(
            base_s=settings.CLOUD_BACKOFF_BASE_MS / 1000,
            max_s=settings.CLOUD_BACKOFF_MAX_MS / 1000,
            circuit_cooldown_s=settings.CLOUD_CIRCUIT_COOLDOWN_MS / 1000,
        ),
        data_dir=settings.data_dir,
    )


def log_shipping_service(
    settings: Callable[[], AgentSettings],
    engine: Engine,
    reconciler: Reconciler,
    targets: TargetStore,
    filters: Sequence[logging.Filter] = (),
) -> LogShippingService:
    def app_name(app_id: int) -> str | None:
        spec = targets.current_target().get(app_id)
        return None if spec is None else spec.app_name

    def set_before_remove(hook: BeforeRemove | None) -> None:
        reconciler.before_remove = hook

    def make(credentials: CloudCredentials) -> LogShippingRun:
        return LogShippingRun(
            credentials,
            shipping_settings(settings()),
            engine,
            lambda: reconciler.last_snapshot,
            app_name,
            list(filters),
            set_before_remove,
        )

    return LogShippingService(make)

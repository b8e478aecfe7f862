"""Builds cloud sync from the agent's settings and stores (used by the composition root)."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..engine.protocol import Engine
from ..orchestrator.reconciler import Reconciler
from ..settings import AgentSettings
from ..store.device import CloudCredentials
from ..store.target_store import TargetStore
from ..while_provisioned import WhileProvisioned
from .retry import RetryPolicy
from .timing import SyncTiming

if TYPE_CHECKING:
    from .client import ReportPublisher
    from .sync import CloudSync


def retry_policy(settings: AgentSettings) -> RetryPolicy:
    """How every loop that talks to the cloud retries (sync, log uploads)."""
    return RetryPolicy(
        base_s=settings.CLOUD_BACKOFF_BASE_MS / 1000,
        max_s=settings.CLOUD_BACKOFF_MAX_MS / 1000,
        circuit_cooldown_s=settings.CLOUD_CIRCUIT_COOLDOWN_MS / 1000,
    )


def sync_timing(settings: AgentSettings) -> SyncTiming:
    return SyncTiming(
        poll_interval_s=settings.POLL_INTERVAL_MS / 1000,
        report_interval_s=settings.REPORT_INTERVAL_MS / 1000,
        full_report_every_s=settings.METRICS_INTERVAL_MS / 1000,
        policy=retry_policy(settings),
    )


def cloud_sync(
    settings: Callable[[], AgentSettings],
    conn: sqlite3.Connection,
    targets: TargetStore,
    reconciler: Reconciler,
    engine: Engine,
    mqtt: ReportPublisher | None = None,
    extra_fields: Callable[[], dict[str, Any]] | None = None,
    poll_requests: asyncio.Event | None = None,
) -> WhileProvisioned[CloudCredentials, CloudSync]:
    """``mqtt``: reports go over MQTT while it is connected (see ``SyncClient.send_report``);
    ``poll_requests``: set to poll now (the MQTT update trigger)."""

    def make(credentials: CloudCredentials) -> CloudSync:
        # Imported here: a device that is not provisioned (local mode) never loads sync, its
        # HTTP client or the sync contracts.
        from ..store.sync_store import SyncStore
        from .collect import DeviceStateCollector
        from .sync import CloudSync

        current = settings()
        return CloudSync(
            credentials,
            targets,
            SyncStore(conn, current.REPORT_QUEUE_MAX),
            DeviceStateCollector(
                targets,
                reconciler,
                engine,
                current.data_dir,
                extra_fields,
                # Fresh within a report interval (the current one: `iotctl config set`).
                metrics_max_age_s=lambda: settings().REPORT_INTERVAL_MS / 1000,
            ),
            reconciler.wake,
            sync_timing(current),
            mqtt=mqtt,
            poll_requests=poll_requests,
        )

    def idle() -> dict[str, Any]:
        endpoint = settings().CLOUD_API_ENDPOINT
        return {"state": "not provisioned" if endpoint else "not configured", "endpoint": endpoint}

    return WhileProvisioned("cloud sync", make, idle)

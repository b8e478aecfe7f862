"""Log shipping while the device is provisioned: the agent's own records (sampled) and every
container's output go through the outbox to the cloud. Started with the cloud credentials
(at start-up when provisioned, right after provisioning), stopped on deprovisioning."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from ..cloud.retry import RetryPolicy
from ..engine.protocol import Engine
from ..orchestrator.model import EngineSnapshot
from ..store.device import CloudCredentials
from .agent_records import ShippingHandler
from .before_remove import ReadBeforeRemove
from .collector import ContainerLogCollector
from .outbox import LogOutbox
from .sampling import LevelSampler

if TYPE_CHECKING:
    from .shipper import LogShipper

log = logging.getLogger("iotistic.logs.shipping")

OUTBOX_FILE: Final = "log-outbox.sqlite"


@dataclass(frozen=True)
class ShippingSettings:
    upload_interval_s: float
    compress: bool
    sampling: dict[str, float]
    max_records: int
    max_bytes: int
    policy: RetryPolicy
    data_dir: Path


class LogShippingRun:
    """One run of shipping with one set of credentials (replaced when they change)."""

    def __init__(
        self,
        credentials: CloudCredentials,
        settings: ShippingSettings,
        engine: Engine,
        snapshot: Callable[[], EngineSnapshot | None],
        app_name: Callable[[int], str | None],
        handler_filters: list[logging.Filter],
        before_remove: ReadBeforeRemove | None = None,
    ) -> None:
        self.credentials = credentials
        self._settings = settings
        self._engine = engine
        self._snapshot = snapshot
        self._app_name = app_name
        self._filters = handler_filters
        self._before_remove = before_remove
        self.shipper: LogShipper | None = None
        self.handler: ShippingHandler | None = None
        self.error: str | None = None
        self.collector: ContainerLogCollector | None = None

    async def run(self) -> None:
        """Ships until stopped; anything unexpected (a broken outbox file, a bug) is logged and
        shipping starts over after a pause instead of ending silently."""
        failures = 0
        while True:
            try:
                await self._run_once()
                return
            except Exception as exc:
                failures += 1
                self.error = f"{type(exc).__name__}: {exc}"
                self.shipper = None
                if failures == 1:
                    log.exception("log shipping failed; starting it again")
                await asyncio.sleep(self._settings.policy.delay(failures))

    async def _run_once(self) -> None:
        # Imported here: a device in local mode never loads the HTTP client side of shipping.
        from ..provisioning.http import cloud_session
        from .shipper import LogShipper
        from .uploader import LogUploader

        settings = self._settings
        outbox = await asyncio.to_thread(
            LogOutbox, settings.data_dir / OUTBOX_FILE, settings.max_records, settings.max_bytes
        )
        handler: ShippingHandler | None = None
        collector: ContainerLogCollector | None = None
        try:
            session = cloud_session(self.credentials.ca_cert, self.credentials.verify_tls)
            async with session:
                uploader = LogUploader(session, self.credentials, settings.compress)
                shipper = LogShipper(outbox, uploader, settings.upload_interval_s, settings.policy)
                self.shipper = shipper
                started = await asyncio.to_thread(outbox.started_at, time.time())
                collector = ContainerLogCollector(
                    self._engine,
                    self._snapshot,
                    self._app_name,
                    outbox.cursors_of,
                    shipper.put,
                    outbox.forget_cursors,
                    backlog_before=started,
                )
                self.collector = collector
                handler = ShippingHandler(shipper.offer, LevelSampler(settings.sampling))
                for log_filter in self._filters:
                    handler.addFilter(log_filter)
                self.handler = handler
                logging.getLogger().addHandler(handler)
                log.info(
                    "log shipping started: every %.0f s to %s, %s",
                    settings.upload_interval_s,
                    self.credentials.endpoint,
                    "gzip" if settings.compress else "uncompressed",
                )
                # A container about to be removed is read to its end first.
                if self._before_remove is not None:
                    self._before_remove.attach(collector.finish_reading)
                async with asyncio.TaskGroup() as group:
                    group.create_task(shipper.run())
                    group.create_task(collector.run())
        finally:
            if self._before_remove is not None and collector is not None:
                self._before_remove.detach(collector.finish_reading)
            if handler is not None:
                logging.getLogger().removeHandler(handler)
            with contextlib.suppress(Exception):
                outbox.close()

    def apply(self, settings: ShippingSettings) -> None:
        """New upload interval, compression and sampling (`iotctl config set`), at once."""
        self._settings = settings
        if self.handler is not None:
            self.handler.sampler = LevelSampler(settings.sampling)
        shipper = self.shipper
        if shipper is not None:
            shipper.uploader.compress = settings.compress
            shipper.interval_s = settings.upload_interval_s
            shipper.upload_now()  # the new interval counts from now

    def status(self) -> dict[str, Any]:
        shipper = self.shipper
        if shipper is None:
            if self.error is not None:
                return {"state": "starting", "lastError": self.error}
            return {"state": "starting"}
        collector = self.collector
        return {
            "state": "running",
            **shipper.status(),
            "containersFollowed": 0 if collector is None else collector.following,
        }

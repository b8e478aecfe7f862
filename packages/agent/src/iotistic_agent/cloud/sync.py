"""Cloud sync for one provisioned device: the poll loop and the report loop, side by side."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp

from ..provisioning.http import CloudError, cloud_session
from ..store.device import CloudCredentials
from ..store.sync_store import SyncStore
from ..store.target_store import TargetStore
from .client import ReportPublisher, SyncClient
from .poller import TargetPoller
from .reporter import StateReporter
from .retry import ConnectionMonitor, RetryGate
from .timing import SyncTiming

__all__ = ["CloudSync", "SyncTiming"]

log = logging.getLogger("iotistic.cloud")


class CloudSync:
    """Runs until cancelled; the loops fail alone and keep going (they never raise)."""

    def __init__(
        self,
        credentials: CloudCredentials,
        targets: TargetStore,
        store: SyncStore,
        collect: Callable[[], Awaitable[dict[str, Any]]],
        on_new_target: Callable[[], None],
        timing: SyncTiming,
        clock: Callable[[], float] = time.monotonic,
        mqtt: ReportPublisher | None = None,
        poll_requests: asyncio.Event | None = None,
    ) -> None:
        """``poll_requests``: an event that asks for a poll now (the MQTT update trigger)."""
        self.credentials = credentials
        self._poll_requests = poll_requests
        self._mqtt = mqtt
        self._targets = targets
        self._store = store
        self._collect = collect
        self._on_new_target = on_new_target
        self._timing = timing
        self._clock = clock
        self.monitor = ConnectionMonitor()
        self.poll_gate = RetryGate(timing.policy, clock)
        self.report_gate = RetryGate(timing.policy, clock)
        self.setup_error: str | None = None
        self.poller: TargetPoller | None = None
        self.reporter: StateReporter | None = None

    def poll_now(self) -> None:
        if self.poller is not None:
            self.poller.poll_now()

    def set_timing(self, timing: SyncTiming) -> None:
        """New intervals from `iotctl config set`, in effect at once (the retry policy is
        kept: a loop that is backing off finishes its current wait)."""
        self._timing = timing
        if self.poller is not None:
            self.poller.interval_s = timing.poll_interval_s
            self.poller.poll_now()
        if self.reporter is not None:
            self.reporter.interval_s = timing.report_interval_s
            self.reporter.full_every_s = timing.full_report_every_s
            self.reporter.report_now()

    async def run(self) -> None:
        creds = self.credentials
        failures = 0
        while True:
            try:
                session = cloud_session(creds.ca_cert, creds.verify_tls)
            except CloudError as exc:
                # A stored API CA that cannot be used: say so in the status and the log, and
                # try again later (never a silently dead task).
                failures += 1
                self.setup_error = exc.message
                log.error("cloud sync cannot start: %s", exc.message)
                await asyncio.sleep(self._timing.policy.delay(failures))
                continue
            self.setup_error = None
            await self._run_with(session)
            return

    async def _run_with(self, session: aiohttp.ClientSession) -> None:
        creds = self.credentials
        async with session:
            client = SyncClient(session, creds, self._mqtt)
            self.poller = TargetPoller(
                client,
                self._targets,
                self._store,
                self.poll_gate,
                self.monitor,
                self._on_new_target,
                self._timing.poll_interval_s,
                self._clock,
                on_full_report_wanted=self._full_report_wanted,
                poll_requests=self._poll_requests,
            )
            self.reporter = StateReporter(
                client,
                self._store,
                self.report_gate,
                self.monitor,
                self._collect,
                self._timing.report_interval_s,
                self._timing.full_report_every_s,
                self._clock,
            )
            log.info("cloud sync started with %s", creds.endpoint)
            async with asyncio.TaskGroup() as group:
                group.create_task(_forever("poll", self.poller.run))
                group.create_task(_forever("report", self.reporter.run))

    def _full_report_wanted(self) -> None:
        if self.reporter is not None:
            self.reporter.request_full()

    def status(self) -> dict[str, Any]:
        now = self._clock()

        def ago(at: float | None) -> float | None:
            return None if at is None else round(now - at, 3)

        poller, reporter = self.poller, self.reporter
        return {
            "state": "error" if self.setup_error else self.monitor.state,
            "setupError": self.setup_error,
            "endpoint": self.credentials.endpoint,
            "consecutiveFailures": self.monitor.consecutive_failures,
            "lastPollSecondsAgo": ago(poller.last_success_at if poller else None),
            "lastReportSecondsAgo": ago(reporter.last_success_at if reporter else None),
            "reportsSent": reporter.sent if reporter else 0,
            "reportsQueued": self._store.queued(),
            "poll": self.poll_gate.describe(),
            "report": self.report_gate.describe(),
        }


async def _forever(name: str, loop: Callable[[], Awaitable[None]]) -> None:
    """A bug in one loop is logged and the loop starts again; it never stops the agent."""
    while True:
        try:
            await loop()
        except Exception:
            log.exception("cloud %s loop failed; restarting it in 5 s", name)
            await asyncio.sleep(5)
        else:
            return

"""Poll the cloud's target state with If-None-Match; persist a new one, then apply it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from iotistic_contracts import TargetState
from iotistic_contracts.sync import DeviceTarget

from ..store.sync_store import SyncStore
from ..store.target_store import TargetStore
from .client import Rejected, SyncClient, SyncFailure
from .retry import ConnectionMonitor, RetryGate

log = logging.getLogger("iotistic.cloud.poll")

ETAG_KEY = "target_etag"


class TargetPoller:
    def __init__(
        self,
        client: SyncClient,
        targets: TargetStore,
        store: SyncStore,
        gate: RetryGate,
        monitor: ConnectionMonitor,
        on_new_target: Callable[[], None],
        interval_s: float,
        clock: Callable[[], float] = time.monotonic,
        on_full_report_wanted: Callable[[], None] = lambda: None,
        poll_requests: asyncio.Event | None = None,
    ) -> None:
        """``poll_requests``: set by whoever wants a poll now (the MQTT update trigger)."""
        self._client = client
        self._on_full_report_wanted = on_full_report_wanted
        self._targets = targets
        self._store = store
        self._gate = gate
        self._monitor = monitor
        self._on_new_target = on_new_target
        self.interval_s = interval_s
        self._clock = clock
        self._trigger = poll_requests or asyncio.Event()
        # A slow poll never overlaps the next one (the trigger may fire while one runs).
        self._lock = asyncio.Lock()
        self.last_success_at: float | None = None
        self.polls = 0

    def poll_now(self) -> None:
        """Ask for an immediate poll (the MQTT update trigger); backoff still applies."""
        self._trigger.set()

    async def run(self) -> None:
        while True:
            await self.poll_once()
            await self._wait_for_next()

    async def _wait_for_next(self) -> None:
        delay = self.interval_s
        if self._gate.errors:
            delay = max(0.0, self._gate.next_attempt_at - self._clock())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._trigger.wait(), delay)
        self._trigger.clear()
        # A trigger during backoff does not skip it: the cloud is still failing.
        remaining = self._gate.next_attempt_at - self._clock()
        if remaining > 0:
            await asyncio.sleep(remaining)

    async def poll_once(self) -> bool:
        """One poll; returns True when a new target was stored."""
        if self._lock.locked():
            log.warning("poll already in progress, skipping")
            return False
        async with self._lock:
            if self._gate.circuit_open:
                return False
            try:
                fetched = await self._client.fetch_target(self._store.get(ETAG_KEY))
            except SyncFailure as exc:
                self._failed(str(exc), exc.retry_after_s)
                return False
            except Rejected as exc:
                # The cloud is there; its answer is unusable. Keep running the last target.
                self._succeeded()
                self._gate.last_error = str(exc)
                log.error("%s; keeping target version %d", exc, self._targets.stored.version)
                return False
            self._succeeded()
            if fetched.full_report_wanted:
                self._on_full_report_wanted()
            if fetched.target is None:
                return False
            return self._store_target(fetched.target, fetched.etag)

    def _store_target(self, target: DeviceTarget, etag: str | None) -> bool:
        version = target.version
        # Stored and hashed without the version, exactly as a local target would be.
        plain = TargetState(apps=target.apps, config=target.config)
        try:
            changed = self._targets.save(plain, source="cloud", version=version)
        except ValueError as exc:  # a target the planner cannot apply
            self._gate.last_error = f"target version {version} cannot be applied: {exc}"
            log.error("%s", self._gate.last_error)
            return False
        # Only after the target is committed: a crash in between polls it again.
        self._store.put(ETAG_KEY, etag)
        if changed:
            log.info("new target version %s from the cloud", version)
            self._on_new_target()
        return changed

    def _succeeded(self) -> None:
        self._gate.record_success()
        self._monitor.record(True)
        self.last_success_at = self._clock()
        self.polls += 1

    def _failed(self, error: str, retry_after_s: float | None) -> None:
        self._monitor.record(False)
        if self._gate.record_failure(error, retry_after_s):
            log.error("poll circuit breaker open after repeated failures, pausing polls: %s", error)
        else:
            log.warning("poll failed (%d in a row): %s", self._gate.errors, error)

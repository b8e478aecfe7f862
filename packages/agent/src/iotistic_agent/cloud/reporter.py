"""Report the device's state to the cloud: diffs, a full report now and then, and an
on-disk queue that delivers, in order, what could not be sent while the cloud was away."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from ..store.sync_store import SyncStore
from .client import Rejected, SyncClient, SyncFailure
from .report_builder import diff_fields
from .retry import ConnectionMonitor, RetryGate

log = logging.getLogger("iotistic.cloud.report")

SEQUENCE_KEY = "report_sequence"

Collect = Callable[[], Awaitable[dict[str, Any]]]


class StateReporter:
    def __init__(
        self,
        client: SyncClient,
        store: SyncStore,
        gate: RetryGate,
        monitor: ConnectionMonitor,
        collect: Collect,
        interval_s: float,
        full_every_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._store = store
        self._gate = gate
        self._monitor = monitor
        self._collect = collect
        self.interval_s = interval_s
        self.full_every_s = full_every_s
        self._clock = clock
        # What the cloud will hold once every report built so far has arrived; None means
        # the next report must be full (first contact, or a gap the cloud cannot bridge).
        self._baseline: dict[str, Any] | None = None
        self._last_full_at = 0.0
        self._last_built_at: float | None = None
        # Continues after the previous process (its last number, or what it left queued).
        self._sequence = max(store.max_sequence(), int(store.get(SEQUENCE_KEY) or 0))
        self._wake = asyncio.Event()
        self.sent = 0
        self.last_success_at: float | None = None

    def report_now(self) -> None:
        self._wake.set()

    def request_full(self) -> None:
        """The cloud missed reports: make the next one full (at the next interval)."""
        if self._baseline is not None:
            log.info("the cloud asked for a full report")
        self._baseline = None

    async def run(self) -> None:
        try:
            while True:
                await self.report_once()
                await self._wait_for_next()
        finally:
            # Saved on the way out (and with every full report), not per report: a healthy
            # device should not write to its flash every ten seconds. After a hard kill the
            # numbers may repeat, which the cloud accepts because a first report is full.
            self._save_sequence()

    def _save_sequence(self) -> None:
        self._store.put(SEQUENCE_KEY, str(self._sequence))

    async def _wait_for_next(self) -> None:
        now = self._clock()
        due = (self._last_built_at or now) + self.interval_s
        if self._store.queued() and not self._gate.circuit_open:
            due = min(due, max(self._gate.next_attempt_at, now))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), max(0.0, due - now))
        self._wake.clear()

    async def report_once(self) -> None:
        now = self._clock()
        pending: tuple[int, str] | None = None
        if self._last_built_at is None or now - self._last_built_at >= self.interval_s * 0.99:
            self._last_built_at = now
            pending = self._build(await self._collect(), now)
            # Straight to the cloud when nothing waits before it; the queue table is written
            # only in an outage, so a healthy device does not write to flash every interval.
            if self._store.queued() or not self._may_send():
                self._enqueue(*pending)
                pending = None
        await self._drain(pending)

    def _build(self, fields: dict[str, Any], now: float) -> tuple[int, str]:
        full = self._baseline is None or now - self._last_full_at >= self.full_every_s
        body_fields = fields if full else diff_fields(self._baseline or {}, fields)
        self._sequence += 1
        report = {
            "full": full,
            "sequence": self._sequence,
            "reportedAt": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
            **body_fields,
        }
        self._baseline = fields
        if full:
            self._last_full_at = now
            self._save_sequence()
        return self._sequence, json.dumps({self._client.uuid: report}, separators=(",", ":"))

    def _may_send(self) -> bool:
        return not self._gate.circuit_open and self._gate.may_attempt()

    def _enqueue(self, sequence: int, body: str) -> None:
        dropped = self._store.enqueue(sequence, body, time.time())
        if dropped:
            # The oldest diffs are gone: only a full report can make the cloud whole again.
            self._baseline = None
            log.warning("report queue full: dropped the %d oldest report(s)", dropped)

    async def _drain(self, pending: tuple[int, str] | None) -> None:
        """Deliver the queue oldest first, then ``pending``; stop at the first failure."""
        while self._may_send():
            queued = self._store.oldest()
            if queued is None:
                break
            if not await self._send(queued.sequence, queued.body):
                break
            self._store.remove(queued.sequence)
        if pending is None:
            return
        if self._store.queued() or not self._may_send() or not await self._send(*pending):
            self._enqueue(*pending)

    async def _send(self, sequence: int, body: str) -> bool:
        """True when the report is done with (delivered, or refused for good)."""
        try:
            status = await self._client.send_report(body)
        except SyncFailure as exc:
            self._failed(str(exc), exc.retry_after_s)
            return False
        except Rejected as exc:
            log.error("cloud rejected report %d, dropping it: %s", sequence, exc)
            # Its changes never arrived: the next report carries everything.
            self._baseline = None
            self._monitor.record(True)
            return True
        self._succeeded(sequence, status)
        return True

    def _succeeded(self, sequence: int, status: str) -> None:
        self._gate.record_success()
        self._monitor.record(True)
        self.last_success_at = self._clock()
        self.sent += 1
        log.debug("report %d %s", sequence, status)

    def _failed(self, error: str, retry_after_s: float | None) -> None:
        self._monitor.record(False)
        if self._gate.record_failure(error, retry_after_s):
            log.error("report circuit breaker open after repeated failures: %s", error)
        else:
            log.warning(
                "report failed (%d in a row), %d queued: %s",
                self._gate.errors,
                self._store.queued(),
                error,
            )

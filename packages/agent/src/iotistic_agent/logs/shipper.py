"""Log records in, cloud out: a bounded queue, a writer that stores batches in the outbox, and
an uploader that sends the oldest stored records first.

Memory stays bounded whatever the containers print: ``put`` (container lines) waits while the
queue is full, so a follower stops reading from the engine (which keeps the lines in its own
log file) until the writer has stored what came before; ``offer`` (the agent's own records,
from any thread) never waits and drops when the queue is full, counting what it dropped.

Uploads run every ``interval_s``, and at once whenever a full upload's worth is waiting, so a
chatty container drains continuously instead of filling the outbox. A failed upload backs off
through the same retry gate as cloud sync (15 s x2 up to 15 min, circuit breaker); the
records stay in the outbox (on disk) and go, oldest first, when the cloud is back. An upload
the cloud refuses outright (4xx other than auth and throttling) is not retried as it is:
retrying the same bytes cannot help, and it must not block everything behind it; the upload
is halved until the one record the cloud refuses is found, and only that one is dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Final, TypeVar

from iotistic_contracts.logs import MAX_LOG_RECORDS_PER_UPLOAD, MAX_LOG_UPLOAD_BYTES

from ..backoff import Backoff
from ..cloud.client import Rejected, SyncFailure
from ..cloud.retry import RetryGate, RetryPolicy
from .loops import call_in_loop, running_loop
from .outbox import Cursor, LogOutbox, Stored
from .uploader import LogUploader

log = logging.getLogger("iotistic.logs.shipper")

QUEUE_SIZE: Final = 2000
# A failed store (a full disk) is retried locally, with no jitter: nothing else waits on it.
STORE_BACKOFF: Final = Backoff(base_s=1.0, max_s=60.0, jitter=0.0)
WRITE_BATCH: Final = 1000
# How long the writer waits to fill a batch: fewer, larger writes to the SD card.
WRITE_DELAY_S: Final = 0.5
# Uncompressed bytes of one upload; gzip only makes it smaller, so the cloud's limit holds.
UPLOAD_BYTES: Final = MAX_LOG_UPLOAD_BYTES - 1024
UPLOAD_RECORDS: Final = MAX_LOG_RECORDS_PER_UPLOAD

T = TypeVar("T")
Fields = Mapping[str, Any]
Item = tuple[Fields, tuple[str, Cursor] | None]


class LogShipper:
    def __init__(
        self,
        outbox: LogOutbox,
        uploader: LogUploader,
        interval_s: float,
        policy: RetryPolicy,
        clock: Callable[[], float] = time.monotonic,
        queue_size: int = QUEUE_SIZE,
    ) -> None:
        self.outbox = outbox
        self.uploader = uploader
        self.interval_s = interval_s
        self.gate = RetryGate(policy, clock)
        self._clock = clock
        self._queue: asyncio.Queue[Item] = asyncio.Queue(queue_size)
        self._filling: list[Item] = []
        self._storing: tuple[list[Item], Future[Stored]] | None = None
        # Records may be offered as soon as the shipper exists (the handler is attached before
        # run starts): the loop is known from here.
        self._loop: asyncio.AbstractEventLoop | None = running_loop()
        # The outbox's own thread: its calls run one at a time and in order, and a stop can
        # wait for the one under way (a cancelled coroutine does not cancel the call).
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="log-outbox")
        self._upload_now = asyncio.Event()
        self._idle = asyncio.Event()
        self.shipped = 0
        self.rejected = 0
        # Records per upload; smaller while a record the cloud refuses is being isolated.
        self._limit = UPLOAD_RECORDS
        self.dropped_in_memory = 0
        self.last_upload_at: float | None = None
        # Read by status() on the event loop: kept here instead of asking SQLite there.
        self.pending = 0
        self.dropped_from_outbox = 0
        self.store_error: str | None = None
        # Whether an upload went through since the cloud started refusing: without one, a
        # refusal of every record is the cloud's (a version or proxy problem), not a record's.
        self._passed_since_refusal = True

    # --- input ---------------------------------------------------------------------------

    async def put(self, fields: Fields, cursor: tuple[str, Cursor] | None = None) -> None:
        """A container line (waits while the queue is full) with its container's cursor."""
        self._idle.clear()
        await self._queue.put((fields, cursor))

    def offer(self, fields: Fields) -> None:
        """An agent record, from any thread; never blocks, dropped when the queue is full."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        call_in_loop(loop, self._offer, fields)

    def _offer(self, fields: Fields) -> None:
        try:
            self._queue.put_nowait((fields, None))
            self._idle.clear()
        except asyncio.QueueFull:
            self.dropped_in_memory += 1

    # --- running -------------------------------------------------------------------------

    async def run(self) -> None:
        self._loop = asyncio.get_running_loop()
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(self._writer())
                group.create_task(self._uploader())
        finally:
            self._loop = None
            # The outbox call under way completes first, then what is left is stored after it.
            self._executor.shutdown(wait=True)
            self._store_left_over()

    async def _outbox(self, call: Callable[..., T], *args: Any) -> T:
        return await asyncio.shield(asyncio.wrap_future(self._executor.submit(call, *args)))

    def upload_now(self) -> None:
        self._upload_now.set()

    async def _writer(self) -> None:
        queue = self._queue
        while True:
            if queue.empty():
                self._idle.set()
            # Kept on the instance while it fills: a stop in the middle still stores it.
            batch = self._filling
            batch.append(await queue.get())
            deadline = self._clock() + WRITE_DELAY_S
            while len(batch) < WRITE_BATCH:
                if not queue.empty():
                    batch.append(queue.get_nowait())
                    continue
                remaining = deadline - self._clock()
                if remaining <= 0:
                    break
                try:
                    batch.append(await asyncio.wait_for(queue.get(), remaining))
                except TimeoutError:
                    break
            self._filling = []
            await self._store_until_stored(batch)

    async def _store_until_stored(self, batch: list[Item]) -> None:
        """A failed store (a full disk, a broken file) is retried with a growing pause while
        the batch waits; followers wait behind it, so their lines wait in the engine."""
        failures = 0
        while True:
            try:
                await self._store(batch)
            except Exception as exc:
                failures += 1
                self.store_error = f"{type(exc).__name__}: {exc}"
                if failures == 1:
                    log.error("cannot store log records on disk, will retry: %s", exc)
                await asyncio.sleep(STORE_BACKOFF.delay(failures))
                continue
            if failures:
                log.info("log records are stored on disk again")
            self.store_error = None
            return

    async def _store(self, batch: list[Item]) -> None:
        records = [fields for fields, _ in batch]
        cursors = dict(cursor for _, cursor in batch if cursor is not None)
        # Remembered with its call: a stop while it runs knows whether the batch got stored.
        future = self._executor.submit(self.outbox.store, records, cursors)
        self._storing = (batch, future)
        stored = await asyncio.shield(asyncio.wrap_future(future))
        self._storing = None
        pending = self.pending = await self._outbox(self.outbox.pending)
        if stored.dropped:
            self.dropped_from_outbox += stored.dropped
            log.warning(
                "log outbox full (%d records): dropped the %d oldest; the cloud will see a gap",
                self.outbox.max_records,
                stored.dropped,
            )
        if pending >= UPLOAD_RECORDS:
            self._upload_now.set()

    async def _uploader(self) -> None:
        while True:
            wait_s = self.interval_s
            if self.gate.next_attempt_at:
                wait_s = max(0.0, self.gate.next_attempt_at - self._clock())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._upload_now.wait(), wait_s)
            self._upload_now.clear()
            try:
                await self.drain()
            except Exception as exc:  # an outbox error: counted like a failed upload
                tripped = self.gate.record_failure(f"{type(exc).__name__}: {exc}")
                if tripped or self.gate.errors == 1:
                    log.exception("log upload round failed")

    async def drain(self) -> bool:
        """Upload what the outbox holds, oldest first; False when stopped by a failure."""
        while True:
            if self.gate.circuit_open or not self.gate.may_attempt():
                return False
            batch = await self._outbox(self.outbox.oldest, self._limit, UPLOAD_BYTES)
            if not batch:
                self.pending = 0
                return True
            last_seq = batch[-1][0]
            try:
                result = await self.uploader.upload([body for _, body in batch])
            except Rejected as exc:
                if self._limit == UPLOAD_RECORDS:  # a refusal out of the blue: count from here
                    self._passed_since_refusal = False
                if len(batch) > 1:
                    # Find the record the cloud refuses by halving: the good ones still go.
                    self._limit = max(1, len(batch) // 2)
                    continue
                if not self._passed_since_refusal:
                    # Down to one record without a single upload passing: the cloud refuses
                    # everything. Keep the records and back off like any failure.
                    self._limit = UPLOAD_RECORDS
                    self._passed_since_refusal = True
                    self.gate.record_failure(f"the cloud refuses every log upload: {exc}")
                    log.error("the cloud refuses every log upload; records kept: %s", exc)
                    return False
                log.error("the cloud refused log record %d (%s); it is dropped", last_seq, exc)
                self.rejected += 1
            except SyncFailure as exc:
                if self.gate.record_failure(str(exc), exc.retry_after_s):
                    log.error("log uploads keep failing; pausing them: %s", exc)
                elif self.gate.errors == 1:
                    log.warning("log upload failed, records kept on disk: %s", exc)
                return False
            else:
                if result.lastSeq > last_seq:
                    # The cloud holds numbers beyond this outbox's: the outbox was lost and
                    # numbering started again, so the cloud took these as repeats. Number what
                    # waits after the cloud's and send it again.
                    last = await self._outbox(self.outbox.renumber_from, result.lastSeq + 1)
                    log.warning(
                        "log sequence behind the cloud's (%d < %d): records renumbered up to %d",
                        last_seq,
                        result.lastSeq,
                        last,
                    )
                    continue
                self.gate.record_success()
                self._passed_since_refusal = True
                self.shipped += len(batch)
                self.last_upload_at = self._clock()
                self._limit = min(UPLOAD_RECORDS, self._limit * 2)
            await self._outbox(self.outbox.remove_through, last_seq)
            self.pending = max(0, self.pending - len(batch))

    async def settled(self) -> None:
        """Wait until everything queued so far is stored in the outbox."""
        await self._idle.wait()

    def _store_left_over(self) -> None:
        """Stopping: what is still queued goes to disk (container cursors with it)."""
        left: list[Item] = []
        if self._storing is not None:
            batch, future = self._storing
            if not future.done() or future.cancelled() or future.exception() is not None:
                left += batch  # its store never ran, or failed: it goes now
            self._storing = None
        left += self._filling
        self._filling = []
        while not self._queue.empty():
            left.append(self._queue.get_nowait())
        if left:
            with contextlib.suppress(Exception):
                self.outbox.store(
                    [fields for fields, _ in left],
                    dict(cursor for _, cursor in left if cursor is not None),
                )

    def status(self) -> dict[str, Any]:
        now = self._clock()
        return {
            "shipped": self.shipped,
            "pending": self.pending,
            "droppedFromOutbox": self.dropped_from_outbox,
            "storeError": self.store_error,
            "droppedInMemory": self.dropped_in_memory,
            "rejected": self.rejected,
            "bytesSent": self.uploader.bytes_sent,
            "compressed": self.uploader.compress,
            "lastUploadAgoS": None
            if self.last_upload_at is None
            else round(now - self.last_upload_at, 3),
            **self.gate.describe(),
        }

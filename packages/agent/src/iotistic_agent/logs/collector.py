"""Follows the output of every container the agent manages and hands each line, tagged with
its app, service and stream, to the log shipper.

Containers come from the reconciler's latest engine snapshot (no extra engine calls). A
running container gets a follower; a stopped one is read once more after it stopped (its last
lines, or the whole output of a short-lived job). Each follower starts from the container's
cursor in the outbox: Docker's ``since`` takes whole seconds here (a float cannot carry
nanoseconds), and the lines of that second that were already stored are skipped by exact
timestamp and count. So an agent restart neither repeats nor loses a line, as long as the
engine still has it (a removed container takes its log with it).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any, Final

from iotistic_contracts.logs import MAX_LOG_MESSAGE_CHARS

from ..engine.log_stream import timestamp_key
from ..engine.protocol import ContainerLogLine, ContainerNotFound, Engine, EngineError
from ..orchestrator.model import ContainerInfo, EngineSnapshot
from .formatting import timestamp
from .outbox import Cursor

log = logging.getLogger("iotistic.logs.containers")

SCAN_INTERVAL_S: Final = 1.0
STREAMS: Final = ("stdout", "stderr")
# Lines of history a container that predates log shipping sends at first (see _follow).
DEFAULT_BACKLOG_LINES: Final = 1000
# How long a container's removal waits for its last lines to be read.
FINISH_READING_S: Final = 5.0
FORGET_EVERY: Final = 60  # scans between two clean-ups of the cursors of removed containers

Put = Callable[[dict[str, Any], tuple[str, Cursor]], Any]


class ResumePoint:
    """Skips what the outbox already holds of one stream, and gives the cursor after each new
    line.

    One per stream: stdout and stderr are stamped by separate engine tasks, so only within a
    stream are the timestamps in order. The cursor is the newest timestamp stored and how many
    stored lines carry exactly it.
    """

    __slots__ = ("_count", "_key", "_resuming", "_skip", "_timestamp")

    def __init__(self, cursor: Cursor | None) -> None:
        self._key = timestamp_key(cursor.timestamp) if cursor else None
        self._timestamp = cursor.timestamp if cursor else ""
        self._count = cursor.count if cursor else 0
        self._skip = self._count
        self._resuming = self._key is not None

    @property
    def since_s(self) -> float | None:
        """Where the engine should start: the cursor's whole second (None: the beginning)."""
        return None if self._key is None else float(self._key[0])

    def advance(self, timestamp: str) -> Cursor | None:
        """The cursor after this line, or None when the line was stored before."""
        return self.advance_key(timestamp, timestamp_key(timestamp))

    def advance_key(self, timestamp: str, key: tuple[int, int] | None) -> Cursor | None:
        """``advance`` with the timestamp already parsed (``timestamp_key``)."""
        if key is None:  # not the engine's UTC nanosecond form: nothing to compare
            return Cursor(timestamp, 1)
        if self._resuming:
            assert self._key is not None
            if key < self._key:
                return None
            if key == self._key and self._skip > 0:
                self._skip -= 1
                return None
            self._resuming = False
        if self._key is None or key > self._key:
            self._key, self._timestamp, self._count = key, timestamp, 1
        elif key == self._key:
            self._count += 1
        return Cursor(self._timestamp, self._count)


class ContainerResume:
    """The resume points of a container's two streams, stored as ``<container>/<stream>``."""

    def __init__(self, container_id: str, cursors: Mapping[str, Cursor]) -> None:
        self._container = container_id
        self._streams = {stream: ResumePoint(cursors.get(stream)) for stream in STREAMS}

    @property
    def since_s(self) -> float | None:
        """The earliest second either stream must be read from (None: the beginning)."""
        seconds = [p.since_s for p in self._streams.values() if p.since_s is not None]
        return min(seconds) if seconds else None

    def advance(self, line: ContainerLogLine) -> tuple[str, Cursor] | None:
        return self.advance_key(line, timestamp_key(line.timestamp))

    def advance_key(
        self, line: ContainerLogLine, key: tuple[int, int] | None
    ) -> tuple[str, Cursor] | None:
        """``advance`` with the line's timestamp already parsed (``timestamp_key``)."""
        cursor = self._streams[line.stream].advance_key(line.timestamp, key)
        return None if cursor is None else (cursor_key(self._container, line.stream), cursor)


def cursor_key(container_id: str, stream: str) -> str:
    return f"{container_id}/{stream}"


def record_of(
    line: ContainerLogLine, app: str, service: str, engine_time: bool | None = None
) -> dict[str, Any]:
    """``engine_time``: whether the line carries the engine's UTC timestamp (None: look); a
    line without one is stamped now."""
    message = line.message
    truncated = len(message) > MAX_LOG_MESSAGE_CHARS
    stamp = line.timestamp
    if engine_time is None:
        engine_time = timestamp_key(stamp) is not None
    if not engine_time:
        stamp = timestamp(time.time())
    fields: dict[str, Any] = {
        "timestamp": stamp,
        "level": "info",
        "source": "container",
        "app": app,
        "service": service,
        "stream": line.stream,
        "message": message[:MAX_LOG_MESSAGE_CHARS] if truncated else message,
    }
    if truncated:
        fields["truncated"] = True
    return fields


class ContainerLogCollector:
    def __init__(
        self,
        engine: Engine,
        snapshot: Callable[[], EngineSnapshot | None],
        app_name: Callable[[int], str | None],
        cursors_of: Callable[[str], Mapping[str, Cursor]],
        put: Callable[[dict[str, Any], tuple[str, Cursor]], Any],
        forget_cursors: Callable[[set[str]], Any] | None = None,
        scan_interval_s: float = SCAN_INTERVAL_S,
        backlog_before: float = 0.0,
        backlog_lines: int = DEFAULT_BACKLOG_LINES,
    ) -> None:
        self._engine = engine
        self._snapshot = snapshot
        self._app_name = app_name
        self._cursors_of = cursors_of
        self._backlog_before = backlog_before
        self._backlog_lines = backlog_lines
        self._put = put
        self._forget_cursors = forget_cursors
        self._interval_s = scan_interval_s
        self._followers: dict[str, asyncio.Task[None]] = {}
        # Containers read to their end while stopped: container id -> the start it ended.
        self._read_to_end: dict[str, float] = {}
        self._failing: set[str] = set()
        self._housekeeping: set[asyncio.Task[Any]] = set()
        self._scans = 0
        self._closed = False

    @property
    def following(self) -> int:
        return len(self._followers)

    async def run(self) -> None:
        try:
            while True:
                self.scan()
                await asyncio.sleep(self._interval_s)
        finally:
            self._closed = True  # a removal hook arriving now starts no new follower
            followers = list(self._followers.values())
            for task in followers:
                task.cancel()
            await asyncio.gather(*followers, return_exceptions=True)

    def scan(self) -> None:
        """Start a follower for every container that may have lines not yet read."""
        snapshot = self._snapshot()
        if snapshot is None:
            return
        present = {c.id for c in snapshot.containers}
        for container in snapshot.containers:
            if container.id in self._followers:
                continue
            stopped_and_read = self._read_to_end.get(container.id) == container.started_at
            if not container.is_running and stopped_and_read:
                continue
            self._followers[container.id] = asyncio.create_task(
                self._follow(container), name=f"logs-{container.id[:12]}"
            )
        for gone in [c for c in self._read_to_end if c not in present]:
            del self._read_to_end[gone]
        self._failing &= present
        self._scans += 1
        forget = self._forget_cursors
        if forget is not None and snapshot.containers and self._scans % FORGET_EVERY == 0:
            # Containers replaced by an update leave their cursor behind: drop those (in a
            # worker thread, like every outbox call).
            keep = present | set(self._followers)
            task = asyncio.get_running_loop().create_task(asyncio.to_thread(forget, keep))
            self._housekeeping.add(task)
            task.add_done_callback(self._housekeeping.discard)

    async def finish_reading(self, container_id: str) -> None:
        """A stopped container is about to be removed (and its log with it): wait, at most
        FINISH_READING_S, until its follower has read and queued everything. Never raises."""
        task = self._followers.get(container_id)
        if task is None:
            if self._closed:
                return
            snapshot = self._snapshot()
            known = snapshot and next(
                (c for c in snapshot.containers if c.id == container_id), None
            )
            if not known or self._read_to_end.get(container_id) == known.started_at:
                return
            # Stopped before any scan saw it running (a short job): read it now.
            task = self._followers[container_id] = asyncio.create_task(
                self._follow(replace(known, status="exited")), name=f"logs-{container_id[:12]}"
            )
        done, _ = await asyncio.wait({task}, timeout=FINISH_READING_S)
        if not done:
            log.warning(
                "the last output of container %s was not all read before its removal",
                container_id[:12],
            )

    async def _follow(self, container: ContainerInfo) -> None:
        app = self._app_name(container.app_id) or str(container.app_id)
        what = f"{app}/{container.service_name} ({container.id[:12]})"
        try:
            cursors = await asyncio.to_thread(self._cursors_of, container.id)
            resume = ContainerResume(container.id, cursors)
            # A container that ran before shipping was first enabled (apps from local mode, an
            # agent upgrade) sends only its recent history, not years of output over a
            # cellular link; any container started since sends everything.
            backlog = not cursors and container.created_at < self._backlog_before
            lines = self._engine.container_logs(
                container.id,
                tail=self._backlog_lines if backlog else None,
                follow=True,
                since=resume.since_s,
            )
            try:
                async for line in lines:
                    key = timestamp_key(line.timestamp)  # parsed once for both uses
                    cursor = resume.advance_key(line, key)
                    if cursor is None:
                        continue
                    fields = record_of(line, app, container.service_name, key is not None)
                    await self._put(fields, cursor)
            finally:
                close = getattr(lines, "aclose", None)
                if close is not None:
                    await close()
            if not container.is_running:
                self._read_to_end[container.id] = container.started_at
            self._failing.discard(container.id)
        except ContainerNotFound:
            self._read_to_end[container.id] = container.started_at
        except EngineError as exc:
            if container.id not in self._failing:
                self._failing.add(container.id)
                log.warning("cannot read the output of %s: %s", what, exc)
        finally:
            self._followers.pop(container.id, None)

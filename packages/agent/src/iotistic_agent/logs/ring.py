"""A bounded in-memory ring of the agent's recent log records, with live followers."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager

from .formatting import LogEntry, record_entry
from .loops import call_in_loop

__all__ = ["LogEntry", "LogRing"]


class LogRing(logging.Handler):
    """Keeps the last `capacity` records; followers get new ones through bounded queues
    (a follower that cannot keep up loses lines rather than growing the agent's memory)."""

    def __init__(self, capacity: int = 2000, follower_queue: int = 1000) -> None:
        super().__init__()
        self._entries: deque[LogEntry] = deque(maxlen=capacity)
        self._followers: set[tuple[asyncio.AbstractEventLoop, asyncio.Queue[LogEntry]]] = set()
        self._follower_queue = follower_queue

    def emit(self, record: logging.LogRecord) -> None:
        try:
            entry = record_entry(record)
        except Exception:  # a bad format string must not break logging
            self.handleError(record)
            return
        self._entries.append(entry)
        for loop, queue in list(self._followers):
            call_in_loop(loop, _offer, queue, entry)

    def seed(self, entries: Iterable[LogEntry]) -> None:
        """Put earlier entries (the previous run's file tail) before anything logged since."""
        logged = list(self._entries)
        self._entries.clear()
        self._entries.extend(entries)
        self._entries.extend(logged)

    def tail(self, n: int) -> list[LogEntry]:
        if n <= 0:
            return []
        return list(self._entries)[-n:]

    @asynccontextmanager
    async def follow(self) -> AsyncIterator[asyncio.Queue[LogEntry]]:
        queue: asyncio.Queue[LogEntry] = asyncio.Queue(self._follower_queue)
        follower = (asyncio.get_running_loop(), queue)
        self._followers.add(follower)
        try:
            yield queue
        finally:
            self._followers.discard(follower)


def _offer(queue: asyncio.Queue[LogEntry], entry: LogEntry) -> None:
    if not queue.full():
        queue.put_nowait(entry)

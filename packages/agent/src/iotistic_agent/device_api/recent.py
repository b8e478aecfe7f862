"""A value many requests share: fetched once for all of them, and never older than asked.

`get()` returns the last value while it is at most `max_age_s` old. Past `refresh_after_s`
it also starts a new fetch in the background, so that under steady load requests keep
getting a fresh value without waiting for one. When there is no value young enough, every
caller waits for the same single fetch (single flight); a fetch that fails fails all of its
waiters and leaves nothing cached, so the next caller tries again.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Recent(Generic[T]):
    def __init__(
        self,
        fetch: Callable[[], Awaitable[T]],
        max_age_s: float,
        *,
        refresh_after_s: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        name: str = "recent-value",
    ) -> None:
        self._fetch = fetch
        self._max_age_s = max_age_s
        self._refresh_after_s = max_age_s / 2 if refresh_after_s is None else refresh_after_s
        self._clock = clock
        self._name = name
        self._value: tuple[float, T] | None = None
        self._fetching: asyncio.Task[T] | None = None

    @property
    def last(self) -> tuple[float, T] | None:
        """The last value and when its fetch started (`clock` time), however old."""
        return self._value

    def offer(self, taken_at: float, value: T) -> None:
        """A value someone else fetched (started at `taken_at`), kept unless older than ours."""
        if self._value is None or taken_at >= self._value[0]:
            self._value = (taken_at, value)

    async def get(self) -> T:
        if self._value is not None:
            age = self._clock() - self._value[0]
            if age <= self._max_age_s:
                if age > self._refresh_after_s:
                    self._start()
                return self._value[1]
        # Shielded: a caller that leaves must not cancel the fetch the others wait for.
        return await asyncio.shield(self._start())

    def _start(self) -> asyncio.Task[T]:
        if self._fetching is None:
            self._fetching = asyncio.create_task(self._run(), name=self._name)
            # Retrieved here too, for a background fetch nobody waits for.
            self._fetching.add_done_callback(lambda t: t.cancelled() or t.exception())
        return self._fetching

    async def _run(self) -> T:
        started_at = self._clock()  # before: the age counted is never less than the real one
        try:
            value = await self._fetch()
        finally:
            self._fetching = None
        self.offer(started_at, value)
        return value

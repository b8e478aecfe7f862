"""What the agent starts is stopped in reverse order when it leaves: one
``contextlib.AsyncExitStack``, and one grace period for the whole shutdown.

A component that does not stop within what is left of the grace period is abandoned (and
logged), so that everything after it still stops: the Device API, the engine client and the
database are always closed. Modelled on kopf's reactor (``_core/reactor/running.py``):
long-running tasks are cancelled and awaited for a bounded time; a task that ends on an
error ends the agent, whose supervisor starts it again, instead of leaving it half alive.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from types import TracebackType
from typing import Any

log = logging.getLogger("iotistic.agent")


class Lifecycle:
    def __init__(
        self,
        grace_s: float,
        on_task_failed: Callable[[str], None],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``on_task_failed``: a task ended on an error (its name; the error is logged)."""
        self._stack = contextlib.AsyncExitStack()
        self._grace_s = grace_s
        self._on_task_failed = on_task_failed
        self._clock = clock
        self._deadline: float | None = None

    async def __aenter__(self) -> Lifecycle:
        await self._stack.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool | None:
        self._deadline = self._clock() + self._grace_s
        return await self._stack.__aexit__(exc_type, exc, traceback)

    def task(self, name: str, coro: Coroutine[Any, Any, None]) -> None:
        """Run ``coro`` until the agent stops; then it is cancelled and awaited."""
        task = asyncio.get_running_loop().create_task(coro, name=name)
        task.add_done_callback(self._ended)

        async def cancel() -> None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

        self.on_stop(name, cancel)

    def on_stop(
        self, name: str, stop: Callable[[], Awaitable[None]], *, bounded: bool = True
    ) -> None:
        """Await ``stop()`` at shutdown, within what is left of the grace period; unbounded
        for what the operator asked for (a factory reset waits for the containers) and for
        closing a local resource after it (the engine client)."""
        self._stack.push_async_callback(self._stop, name, stop, bounded)

    def on_exit(self, close: Callable[[], object]) -> None:
        """Call ``close()`` (quick and synchronous) at shutdown, whatever happened before."""
        self._stack.callback(close)

    async def _stop(self, name: str, stop: Callable[[], Awaitable[None]], bounded: bool) -> None:
        deadline = self._deadline
        left = self._grace_s if deadline is None else max(0.0, deadline - self._clock())
        try:
            await asyncio.wait_for(stop(), left if bounded else None)
        except TimeoutError:
            log.warning("%s did not stop within the shutdown grace period; left behind", name)
        except Exception:
            log.exception("stopping %s failed", name)

    def _ended(self, task: asyncio.Task[None]) -> None:
        if task.cancelled():
            return
        error = task.exception()
        if error is not None:
            log.error("%s failed; the agent stops", task.get_name(), exc_info=error)
            self._on_task_failed(task.get_name())

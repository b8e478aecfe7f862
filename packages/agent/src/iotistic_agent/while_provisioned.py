"""A component that runs only while the device has credentials: cloud sync, MQTT and log
shipping. Started with the credentials (at start-up when provisioned, right after
`iotctl provision`), replaced when they change, stopped on deprovisioning and at shutdown.

Each run is built fresh from the credentials it serves (``make``), so nothing of a previous
registration survives into the next one; at most one run is alive at a time (a replacement
starts only once its predecessor has stopped).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any, Generic, Protocol, TypeVar

log = logging.getLogger("iotistic.agent")

C = TypeVar("C")
C_co = TypeVar("C_co", covariant=True)


class CredentialedRun(Protocol[C_co]):
    @property
    def credentials(self) -> C_co: ...

    async def run(self) -> None: ...

    def status(self) -> dict[str, Any]: ...


R = TypeVar("R", bound=CredentialedRun[Any])


class WhileProvisioned(Generic[C, R]):
    def __init__(
        self, name: str, make: Callable[[C], R], idle_status: Callable[[], dict[str, Any]]
    ) -> None:
        """``idle_status``: what ``status`` shows while nothing runs."""
        self.name = name
        self._make = make
        self._idle_status = idle_status
        self._current: R | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def current(self) -> R | None:
        """The run serving the current credentials; None while not provisioned."""
        return self._current

    def start(self, credentials: C) -> None:
        """Run for these credentials; the same ones again change nothing."""
        current = self._current
        if current is not None and current.credentials == credentials:
            return
        run = self._make(credentials)
        previous, self._current = self._task, run
        self._task = asyncio.get_running_loop().create_task(_after(previous, run), name=self.name)
        self._task.add_done_callback(_report_failure)

    async def stop(self) -> None:
        task, self._task, self._current = self._task, None, None
        await _stopped(task)

    def stop_soon(self) -> None:
        """From synchronous code (deprovisioning): cancelled now, awaited by the next start
        or stop."""
        if self._current is None:
            return
        self._current = None
        if self._task is not None:
            self._task.cancel()
        log.info("%s stopped", self.name)

    def status(self) -> dict[str, Any]:
        current = self._current
        return self._idle_status() if current is None else current.status()


async def _after(previous: asyncio.Task[None] | None, run: CredentialedRun[Any]) -> None:
    await _stopped(previous)
    await run.run()


async def _stopped(task: asyncio.Task[None] | None) -> None:
    if task is None:
        return
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        current = asyncio.current_task()
        if current is not None and current.cancelling():
            raise  # the caller itself is being cancelled (a shutdown out of time)
    except Exception:
        pass  # reported when the task ended (_report_failure)


def _report_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and (error := task.exception()) is not None:
        log.error("%s failed and stopped", task.get_name(), exc_info=error)

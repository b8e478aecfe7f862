"""At most one running instance of a component that is replaced or stopped at runtime (cloud
sync and MQTT, started by provisioning and stopped by deprovisioning)."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Generic, Protocol, TypeVar


class Runnable(Protocol):
    async def run(self) -> None: ...


R = TypeVar("R", bound=Runnable)


async def stop_task(task: asyncio.Task[None] | None) -> None:
    if task is None or task.done():
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


class TaskSlot(Generic[R]):
    def __init__(self, name: str) -> None:
        self._name = name
        self.current: R | None = None
        self._task: asyncio.Task[None] | None = None

    def replace(self, component: R) -> None:
        """Run ``component`` in the slot; the one it replaces is stopped first."""
        previous = self._task
        self.current = component
        self._task = asyncio.get_running_loop().create_task(
            self._run_after(previous, component), name=self._name
        )

    @staticmethod
    async def _run_after(previous: asyncio.Task[None] | None, component: R) -> None:
        await stop_task(previous)
        await component.run()

    async def stop(self) -> None:
        task, self._task, self.current = self._task, None, None
        await stop_task(task)

    def stop_soon(self) -> bool:
        """From synchronous code; False when nothing was running."""
        if self._task is None:
            return False
        asyncio.get_running_loop().create_task(self.stop())
        return True

"""The agent's shutdown: reverse start order, one grace period for all of it."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from iotistic_agent.lifecycle import Lifecycle

from tests.integration.waiting import wait_for_async


def never_failing(name: str) -> None:
    raise AssertionError(f"{name} was not expected to fail")


async def test_everything_stops_in_reverse_start_order() -> None:
    stopped: list[str] = []

    def stop(name: str) -> Any:
        async def stopping() -> None:
            stopped.append(name)

        return stopping

    async with Lifecycle(5, never_failing) as life:
        life.on_exit(lambda: stopped.append("database"))
        life.on_stop("engine", stop("engine"))
        life.task("loop", asyncio.Event().wait())
        life.on_stop("api", stop("api"))
    assert stopped == ["api", "engine", "database"]


async def test_one_grace_period_bounds_the_whole_shutdown_and_the_rest_still_stops() -> None:
    stopped: list[str] = []

    async def hangs() -> None:
        await asyncio.Event().wait()

    async def closes() -> None:
        stopped.append("engine")

    grace = 1.0
    begun = time.monotonic()
    async with Lifecycle(grace, never_failing) as life:
        life.on_exit(lambda: stopped.append("database"))
        life.on_stop("engine", closes, bounded=False)
        for name in ("first", "second", "third"):
            life.on_stop(name, hangs)
        begun = time.monotonic()
    elapsed = time.monotonic() - begun
    # Three components that never stop share one grace period (not one each) ...
    assert grace <= elapsed < 2 * grace
    # ... and what was started before them is still stopped.
    assert stopped == ["engine", "database"]


async def test_a_task_that_fails_is_reported_once() -> None:
    failed: list[str] = []

    async def broken() -> None:
        raise RuntimeError("boom")

    async with Lifecycle(5, failed.append) as life:
        life.task("reconciler", broken())
        await wait_for_async(lambda: failed, 10, 0.01)
    assert failed == ["reconciler"]


async def test_a_task_that_ends_normally_or_is_cancelled_is_no_failure() -> None:
    async def done() -> None:
        return

    async with Lifecycle(5, never_failing) as life:
        life.task("provisioning", done())
        life.task("loop", asyncio.Event().wait())

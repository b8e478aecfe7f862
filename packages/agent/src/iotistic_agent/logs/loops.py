"""Handing a log record to an event loop from whatever thread logged it.

Records come from the loop's own thread and from worker threads (``asyncio.to_thread``);
asyncio queues belong to their loop, so another thread must schedule the call instead.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import TypeVarTuple

Ts = TypeVarTuple("Ts")


def running_loop() -> asyncio.AbstractEventLoop | None:
    """The loop running in this thread, if any."""
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def call_in_loop(
    loop: asyncio.AbstractEventLoop, callback: Callable[[*Ts], object], *args: *Ts
) -> None:
    """``callback(*args)`` on ``loop``: at once from its own thread, scheduled from any other
    (nothing when the loop has closed meanwhile: nobody is left to receive it)."""
    if running_loop() is loop:
        callback(*args)
        return
    with contextlib.suppress(RuntimeError):
        loop.call_soon_threadsafe(callback, *args)

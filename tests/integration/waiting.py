"""Poll a condition until it holds or a timeout expires.

Tests synchronise with the engine, servers and the agent only through these helpers, never
through fixed sleeps: a fixed sleep is either too short on a busy CI machine or wastes time.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar, overload

T = TypeVar("T")


def _timeout_message(
    message: str, timeout: float, last_value: object, error: BaseException | None
) -> str:
    detail = f"{message} (waited {timeout:.1f}s; last value: {last_value!r}"
    if error is not None:
        detail += f"; last error: {type(error).__name__}: {error}"
    return detail + ")"


def wait_for(
    predicate: Callable[[], T],
    timeout: float,
    interval: float = 0.1,
    message: str = "condition was not met",
    *,
    ignore: tuple[type[BaseException], ...] = (),
) -> T:
    """Call predicate until it returns a truthy value, and return that value.

    Exceptions listed in `ignore` count as "not yet" (for example ConnectionError while a
    server starts); on timeout an AssertionError carries `message` and the last outcome.
    """
    deadline = time.monotonic() + timeout
    last_value: object = None
    last_error: BaseException | None = None
    while True:
        try:
            value = predicate()
        except ignore as err:
            last_error = err
        else:
            if value:
                return value
            last_value, last_error = value, None
        if time.monotonic() >= deadline:
            raise AssertionError(_timeout_message(message, timeout, last_value, last_error))
        time.sleep(interval)


# A plain `timeout` argument (rather than asyncio.timeout) keeps both helpers alike and
# lets the AssertionError carry the caller's message and the last observed value.
@overload
async def wait_for_async(
    predicate: Callable[[], Awaitable[T]],
    timeout: float,  # noqa: ASYNC109
    interval: float = ...,
    message: str = ...,
    *,
    ignore: tuple[type[BaseException], ...] = ...,
) -> T: ...


@overload
async def wait_for_async(
    predicate: Callable[[], T],
    timeout: float,  # noqa: ASYNC109
    interval: float = ...,
    message: str = ...,
    *,
    ignore: tuple[type[BaseException], ...] = ...,
) -> T: ...


async def wait_for_async(
    predicate: Callable[[], T | Awaitable[T]],
    timeout: float,  # noqa: ASYNC109
    interval: float = 0.1,
    message: str = "condition was not met",
    *,
    ignore: tuple[type[BaseException], ...] = (),
) -> T:
    """Async twin of wait_for; predicate may be a plain function or return an awaitable."""
    deadline = time.monotonic() + timeout
    last_value: object = None
    last_error: BaseException | None = None
    while True:
        try:
            result = predicate()
            value = await result if inspect.isawaitable(result) else result
        except ignore as err:
            last_error = err
        else:
            if value:
                return value
            last_value, last_error = value, None
        if time.monotonic() >= deadline:
            raise AssertionError(_timeout_message(message, timeout, last_value, last_error))
        await asyncio.sleep(interval)

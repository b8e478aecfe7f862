"""Is the database unavailable, and since when: one log line per outage, not per request.

``unavailable_reason`` tells an outage (server stopped or restarting, connection lost, pool
or SQLite write lock waited on for too long) from a real bug; the API answers the first with
503 and ``Retry-After``. ``OutageLog`` logs the first failure of an outage and, once a
statement succeeds again, one line saying how long it lasted.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Final

from sqlalchemy import exc as sa

log = logging.getLogger("iotistic.cloud.database")

# SQLSTATE classes that mean "the server cannot serve now" (PostgreSQL appendix A):
# 08 connection exception, 53 insufficient resources (too many connections, disk full),
# 57 operator intervention (shutdown, restart, canceled), 58 system error (I/O).
_UNAVAILABLE_SQLSTATE_CLASSES: Final = frozenset({"08", "53", "57", "58"})


class DatabaseBusy(Exception):
    """This process waited too long for a connection or SQLite's write lock."""


def unavailable_reason(error: BaseException) -> str | None:
    """A short reason (the error's class, never its text, which may hold values) when
    ``error`` means the database cannot serve now; None when it is anything else."""
    if isinstance(error, sa.TimeoutError | DatabaseBusy):
        return "busy: no connection free in time"
    if isinstance(error, sa.DBAPIError):
        cause = error.orig if error.orig is not None else error
        if isinstance(error, sa.OperationalError | sa.InterfaceError) or (
            error.connection_invalidated or _sqlstate_class(cause) in _UNAVAILABLE_SQLSTATE_CLASSES
        ):
            return _name(cause.__cause__ or cause)
        return None
    if isinstance(error, OSError | TimeoutError):
        return _name(error)
    return None


def _sqlstate_class(error: BaseException) -> str | None:
    code = getattr(error, "sqlstate", None) or getattr(error, "pgcode", None)
    return code[:2] if isinstance(code, str) else None


def _name(error: BaseException) -> str:
    return type(error).__name__


class OutageLog:
    """``failed`` on every refused request, ``succeeded`` after every statement that ran:
    a warning when an outage starts, one line when it ends, nothing in between."""

    def __init__(self, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._monotonic = monotonic
        self._since: float | None = None
        self._refused = 0

    @property
    def down(self) -> bool:
        return self._since is not None

    def failed(self, reason: str) -> None:
        self._refused += 1
        if self._since is None:
            self._since = self._monotonic()
            log.warning(
                "database unavailable (%s): answering 503 with Retry-After until it is back",
                reason,
            )

    def succeeded(self) -> None:
        if self._since is None:
            return
        lasted = self._monotonic() - self._since
        log.warning(
            "database available again after %.1f s (%d requests answered 503)",
            lasted,
            self._refused,
        )
        self._since = None
        self._refused = 0

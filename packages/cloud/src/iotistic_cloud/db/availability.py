"""Is the database unavailable, and since when: one log line per outage, not per request.

``unavailable_reason`` tells an outage (server stopped or restarting, connection lost, pool
or SQLite write lock waited on for too long) from a real bug; the API answers the first with
503 and ``Retry-After``. ``OutageLog`` logs the first failure of an outage and, once a
statement runs again, one line saying how long it lasted (an ``EpisodeLog``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Final

from sqlalchemy import exc as sa

from ..episodes import EpisodeLog

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


class OutageLog(EpisodeLog):
    """One warning when the database becomes unavailable, one line when a statement runs
    again (``succeeded``, from the engine's after-statement hook)."""

    def __init__(self, monotonic: Callable[[], float] = time.monotonic) -> None:
        super().__init__(
            log,
            "database unavailable ({reason}): answering 503 with Retry-After until it is back",
            "database available again after {seconds:.1f} s ({refused} requests answered 503)",
            monotonic=monotonic,
        )

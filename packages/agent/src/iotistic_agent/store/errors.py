"""Writes to the agent's database that fail for a reason outside the agent: the disk is full,
or the file system refuses writes (read-only, I/O errors). Stores raise these instead of
SQLite's errors, so that callers can tell the user what happened (the Device API: 507 and
503, docs/device-api.md) and know that nothing was stored."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

_UNWRITABLE = frozenset(
    {sqlite3.SQLITE_READONLY, sqlite3.SQLITE_IOERR, sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_BUSY}
)


class StorageError(Exception):
    """A write to the database failed; nothing of it was stored."""


class StorageFull(StorageError):
    """The disk holding the database is full."""


class StorageUnwritable(StorageError):
    """The database takes no writes (read-only file system, I/O error, locked)."""


@contextmanager
def storage_errors() -> Iterator[None]:
    """Raise SQLite's disk-full and write errors of the block as StorageError."""
    try:
        yield
    except sqlite3.OperationalError as exc:
        code = (exc.sqlite_errorcode or 0) & 0xFF  # the primary code of an extended one
        if code == sqlite3.SQLITE_FULL:
            raise StorageFull(str(exc)) from exc
        if code in _UNWRITABLE:
            raise StorageUnwritable(str(exc)) from exc
        raise

"""An online backup of the SQLite database: a consistent copy taken while the cloud runs.

SQLite's own backup API (Python's ``sqlite3.Connection.backup``) copies the pages of one
snapshot of the database; writers keep going meanwhile. The copy holds the same secrets as
the database, so it is created 0600 and never over an existing file.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from pathlib import Path
from typing import Final

from .private_files import FILE_MODE

# Pages copied per step: writers of the running cloud get the lock between steps.
PAGES_PER_STEP: Final = 1024


class BackupError(Exception):
    """The backup could not be made; the message says why (no partial file is left)."""


def backup_sqlite(source: Path, target: Path) -> None:
    if not source.is_file():
        raise BackupError(f"{source} does not exist")
    try:
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        raise BackupError(f"{target} exists; a backup never overwrites a file") from None
    except OSError as exc:
        raise BackupError(f"cannot create {target}: {exc.strerror or exc}") from None
    os.close(fd)
    try:
        _copy(source, target)
    except (sqlite3.Error, OSError) as exc:
        with contextlib.suppress(OSError):
            target.unlink()
        raise BackupError(f"backup of {source} failed: {exc}") from None


def _copy(source: Path, target: Path) -> None:
    with (
        contextlib.closing(sqlite3.connect(source)) as src,
        contextlib.closing(sqlite3.connect(target)) as dst,
    ):
        src.backup(dst, pages=PAGES_PER_STEP)
        # A self-contained file: no -wal beside it to copy or to lose.
        dst.execute("PRAGMA journal_mode=DELETE")
        problem = dst.execute("PRAGMA integrity_check").fetchone()[0]
        if problem != "ok":
            raise sqlite3.DatabaseError(f"the copy is not intact: {problem}")

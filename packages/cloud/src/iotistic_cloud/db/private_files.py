"""The SQLite file holds secrets (unexpired key-exchange private keys, key hashes): it is
created 0600 in a 0700 folder, and one found with wider permissions is narrowed.

SQLite creates its ``-wal`` and ``-shm`` files with the main file's permissions, so making
the main file private before the first connection covers them; existing ones are narrowed
too (they may come from an earlier release that created the database 0644).
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
from pathlib import Path
from typing import Final

log = logging.getLogger("iotistic.cloud.database")

FILE_MODE: Final = 0o600
FOLDER_MODE: Final = 0o700
_COMPANIONS: Final = ("", "-wal", "-shm", "-journal")


def private_sqlite_file(path: Path) -> None:
    """Create ``path`` (and its folder, if missing) private, or narrow it if it exists."""
    # A folder that exists is left as it is: it may be shared (/srv); the data dir the
    # cloud creates is its own.
    path.parent.mkdir(parents=True, exist_ok=True, mode=FOLDER_MODE)
    with contextlib.suppress(FileExistsError):
        # O_EXCL: never truncate, never follow a planted symlink. An empty file is an empty
        # SQLite database.
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE))
    for suffix in _COMPANIONS:
        narrow(Path(f"{path}{suffix}"), FILE_MODE)


def narrow(path: Path, mode: int) -> None:
    """Remove the permissions of ``path`` beyond ``mode`` (it may not exist)."""
    try:
        current = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        return
    if current & ~mode:
        path.chmod(current & mode)
        log.info("%s had mode %04o; narrowed to %04o (it holds secrets)", path, current, mode)

"""Owner-only folders and files for what the agent keeps: its data folder (identity,
database, keys) and its log folder and files are 0700 and 0600, created so and tightened at
start when an older release left them 0755 and 0644.

An existing folder is tightened only when it is the agent's own: a folder of another user,
a shared one (sticky bit, like /tmp), the home directory or / is left as it is, with a
warning, since changing it would break other programs; the agent's files in it are 0600
anyway.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path
from typing import Final

log = logging.getLogger("iotistic.agent")

PRIVATE_DIR_MODE: Final = 0o700
PRIVATE_FILE_MODE: Final = 0o600


def private_dir(path: Path) -> Path:
    """Create ``path`` 0700 (its missing parents as usual), or tighten it; returns it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        path.mkdir(mode=PRIVATE_DIR_MODE)
    except FileExistsError:
        _tighten_dir(path)
    else:
        os.chmod(path, PRIVATE_DIR_MODE)  # mkdir's mode is reduced by the umask
    return path


def _tighten_dir(path: Path) -> None:
    info = path.stat()
    if not stat.S_ISDIR(info.st_mode) or not info.st_mode & 0o077:
        return
    reason = _not_ours(path, info)
    if reason is not None:
        log.warning(
            "the agent's folder %s is %s: left at mode %o; give the agent a folder of its "
            "own (DATABASE_PATH) to keep its names private",
            path,
            reason,
            stat.S_IMODE(info.st_mode),
        )
        return
    os.chmod(path, stat.S_IMODE(info.st_mode) & PRIVATE_DIR_MODE)
    log.info("tightened %s to owner-only access (mode 700)", path)


def _not_ours(path: Path, info: os.stat_result) -> str | None:
    geteuid = getattr(os, "geteuid", None)
    if geteuid is not None and info.st_uid != geteuid():
        return "owned by another user"
    if info.st_mode & stat.S_ISVTX:
        return "shared (sticky bit)"
    resolved = path.resolve()
    if resolved == resolved.parent:
        return "the root folder"
    if resolved == Path.home().resolve():
        return "the home folder"
    return None


def private_file(path: Path) -> None:
    """Tighten an existing file to 0600 (a missing one is fine: nothing to protect)."""
    try:
        if stat.S_IMODE(path.stat().st_mode) & 0o077:
            os.chmod(path, PRIVATE_FILE_MODE)
    except FileNotFoundError:
        pass


def open_private(path: Path, append: bool = True) -> int:
    """A file descriptor on ``path`` created 0600 (an existing file is tightened)."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if append else os.O_TRUNC)
    fd = os.open(path, flags, PRIVATE_FILE_MODE)
    os.fchmod(fd, PRIVATE_FILE_MODE)
    return fd

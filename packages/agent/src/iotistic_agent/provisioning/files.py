"""Files that hold secrets: owner-only (0600), replaced atomically."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Final

DEVICE_KEY_FILE_NAME: Final = "device-key.pem"


def device_key_path(data_dir: Path) -> Path:
    """The device's private key: part of its identity (factory reset removes it)."""
    return data_dir / DEVICE_KEY_FILE_NAME


def write_private_file(path: Path, data: bytes) -> None:
    """Write, fsync and rename: a crash leaves the old file or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # mkstemp creates the file with mode 0600 before any byte is written.
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(temp, 0o600)
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
    # The rename itself must survive a power cut too.
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)

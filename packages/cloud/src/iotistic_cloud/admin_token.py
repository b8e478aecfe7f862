"""The admin API's bearer token: ADMIN_TOKEN, else one generated into <data dir>/admin.token."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Final

from .settings import MIN_ADMIN_TOKEN_CHARS, Settings, SettingsError
from .tokens import ADMIN_TOKEN_PREFIX, new_token

FILE_NAME: Final = "admin.token"


def token_file(settings: Settings) -> Path:
    return settings.data_dir / FILE_NAME


def admin_token(settings: Settings) -> str:
    """The token, creating the file (mode 0600) the first time; stable across restarts."""
    if settings.admin_token is not None:
        return settings.admin_token
    path = token_file(settings)
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        if not path.exists():
            _publish(path, new_token(ADMIN_TOKEN_PREFIX))
    except OSError as exc:
        raise SettingsError(
            f"cannot create the admin token file {path} ({exc.strerror or exc}); "
            "set ADMIN_TOKEN or make CLOUD_DATA_DIR writable"
        ) from None
    return _read(path)


def _publish(path: Path, token: str) -> None:
    # Written whole to a private temporary file, then linked into place: the link fails if
    # another process won the race, and nobody ever reads a half-written token.
    temporary = path.with_name(f".{FILE_NAME}.{os.getpid()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(token + "\n")
        with contextlib.suppress(FileExistsError):
            os.link(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def _read(path: Path) -> str:
    # The file may have been copied with looser permissions; a secret stays owner-only.
    with contextlib.suppress(OSError):
        if path.stat().st_mode & 0o077:
            path.chmod(0o600)
    try:
        token = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise SettingsError(f"cannot read the admin token file {path}: {exc}") from None
    if len(token) < MIN_ADMIN_TOKEN_CHARS:
        raise SettingsError(f"the admin token file {path} is empty or too short")
    return token

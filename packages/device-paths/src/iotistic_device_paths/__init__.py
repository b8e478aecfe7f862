"""Where the agent keeps a device's data, found the same way by the agent and by iotctl.

`DATABASE_PATH` wins (a relative one is taken from the working directory, `~` expands);
otherwise the database is `device.sqlite` in the data directory: `/var/lib/iotistic` for
root (the Filesystem Hierarchy Standard's place for a service's state), and for anyone else
`$XDG_DATA_HOME/iotistic`, or `~/.local/share/iotistic` when XDG_DATA_HOME is unset (the XDG
Base Directory Specification). The data directory is the database's folder; the Device API's
key lives there, next to it. The answer never depends on the folder the agent starts in, so
starting it elsewhere cannot give the device a second identity.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Final

SYSTEM_DATA_DIR: Final = Path("/var/lib/iotistic")
APP_DIR_NAME: Final = "iotistic"
DATABASE_FILE_NAME: Final = "device.sqlite"
API_KEY_FILE_NAME: Final = "device-api.key"
# The environment these answers depend on.
LOCATION_VARIABLES: Final = ("DATABASE_PATH", "XDG_DATA_HOME", "HOME")


def running_as_root() -> bool:
    geteuid = getattr(os, "geteuid", None)  # absent on Windows
    return geteuid is not None and geteuid() == 0


def default_data_dir(env: Mapping[str, str], *, as_root: bool | None = None) -> Path:
    """The data directory when DATABASE_PATH is unset."""
    if running_as_root() if as_root is None else as_root:
        return SYSTEM_DATA_DIR
    xdg = env.get("XDG_DATA_HOME", "").strip()
    # The XDG specification: a relative XDG_DATA_HOME is invalid and must be ignored.
    if xdg and Path(xdg).is_absolute():
        return Path(xdg) / APP_DIR_NAME
    return _home(env) / ".local" / "share" / APP_DIR_NAME


def _home(env: Mapping[str, str]) -> Path:
    home = env.get("HOME", "").strip()
    return Path(home) if home else Path.home()


def database_path(
    env: Mapping[str, str], *, cwd: Path | None = None, as_root: bool | None = None
) -> Path:
    """The agent's database: DATABASE_PATH (absolute, `~` expanded), else the default."""
    explicit = env.get("DATABASE_PATH", "").strip()
    if not explicit:
        return default_data_dir(env, as_root=as_root) / DATABASE_FILE_NAME
    path = _expand_user(explicit, env)
    return path if path.is_absolute() else (cwd or Path.cwd()) / path


def _expand_user(path: str, env: Mapping[str, str]) -> Path:
    """`~` and `~/...` from this environment's HOME, `~name/...` from the user database;
    an unknown user leaves the path as written, like the shell does."""
    if path == "~" or path.startswith("~/"):
        return _home(env) / path[2:]
    return Path(os.path.expanduser(path))


def data_dir(
    env: Mapping[str, str], *, cwd: Path | None = None, as_root: bool | None = None
) -> Path:
    """The folder of the database: the device's identity, keys, logs and outbox live here."""
    return database_path(env, cwd=cwd, as_root=as_root).parent


def api_key_path(data_directory: Path) -> Path:
    """The Device API's key, written by the agent on its first start, read by iotctl."""
    return data_directory / API_KEY_FILE_NAME

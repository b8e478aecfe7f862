"""Where the Device API is and which key opens it, from the same settings as the agent.

URL: DEVICE_API_URL, else http://<DEVICE_API_HOST or 127.0.0.1>:<DEVICE_API_PORT or 48484>.
Key: IOTCTL_API_KEY, else `device-api.key` in the agent's data directory, found exactly as
the agent finds it (iotistic_device_paths: the folder of DATABASE_PATH, by default
/var/lib/iotistic as root, else $XDG_DATA_HOME/iotistic or ~/.local/share/iotistic), the file
the agent writes on its first start.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from iotistic_device_paths import api_key_path, data_dir

from .errors import EXIT_USAGE, CliError

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 48484
# An agent bound to every interface is still reached on loopback.
_WILDCARD_HOSTS = frozenset({"", "0.0.0.0", "::", "[::]", "*"})


def api_url(env: Mapping[str, str]) -> str:
    explicit = env.get("DEVICE_API_URL", "").strip()
    if explicit:
        if not explicit.startswith(("http://", "https://")):
            raise CliError(
                f"DEVICE_API_URL must start with http:// or https://, got {explicit!r}", EXIT_USAGE
            )
        return explicit.rstrip("/")
    raw_port = env.get("DEVICE_API_PORT", "").strip() or str(DEFAULT_PORT)
    if not raw_port.isdigit() or not 0 < int(raw_port) <= 65535:
        raise CliError(f"DEVICE_API_PORT must be a port number, got {raw_port!r}", EXIT_USAGE)
    host = env.get("DEVICE_API_HOST", "").strip()
    if host in _WILDCARD_HOSTS:
        host = DEFAULT_HOST
    elif ":" in host and not host.startswith("["):
        host = f"[{host}]"  # a bare IPv6 address needs brackets in a URL
    return f"http://{host}:{int(raw_port)}"


def key_file(env: Mapping[str, str], cwd: Path | None = None) -> Path:
    """Where the agent with this environment keeps its key (a relative DATABASE_PATH is
    taken from the working directory, as the agent does)."""
    return api_key_path(data_dir(env, cwd=cwd))


def key_unreadable(path: Path, reason: str) -> CliError:
    return CliError(
        f"cannot read the device API key from {path} ({reason}): "
        "run as the agent's user or set IOTCTL_API_KEY"
    )


def api_key(env: Mapping[str, str], cwd: Path | None = None) -> str:
    explicit = env.get("IOTCTL_API_KEY", "").strip()
    if explicit:
        return explicit
    path = key_file(env, cwd)
    try:
        key = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        raise key_unreadable(path, "no such file") from None
    except PermissionError:
        raise key_unreadable(path, "permission denied") from None
    except UnicodeDecodeError:
        # Never echo the file's content: it is meant to be a secret.
        raise key_unreadable(path, "the file does not hold a key") from None
    except OSError as exc:
        raise key_unreadable(path, (exc.strerror or type(exc).__name__).lower()) from None
    if not key:
        raise key_unreadable(path, "the file is empty")
    return key

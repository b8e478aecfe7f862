"""Validated field types for the wire models, each backed by one small check.

Union-typed fields get a ``BeforeValidator`` that checks the input's type itself, so a wrong
type yields one clear error instead of one error per union member.
"""

from __future__ import annotations

import re
from typing import Annotated, Final

from pydantic import AfterValidator, BeforeValidator

from .compose import parse_cpu, parse_duration, parse_memory, parse_port, parse_volume

NAME_RE: Final = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]*")
MAX_SERVICE_NAME_LENGTH: Final = 63
_HOSTNAME_LABEL_RE: Final = re.compile(r"[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?")
_CAPABILITY_RE: Final = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}")
_DEVICE_PERMISSIONS: Final = frozenset("rwm")
_RESTART_RE: Final = re.compile(r"no|always|unless-stopped|on-failure(?::[0-9]{1,9})?")
_SIGNAL_RE: Final = re.compile(r"(?:SIG)?[A-Z][A-Z0-9]*(?:[+-][0-9]{1,2})?|[0-9]{1,2}")
_SIMPLE_NETWORK_MODES: Final = frozenset({"bridge", "host", "none"})


def check_name(value: str) -> str:
    if NAME_RE.fullmatch(value) is None:
        raise ValueError(
            f"invalid name {value!r}: use letters, digits, '_', '.' or '-', "
            "starting with a letter or digit"
        )
    return value


def check_service_name(value: str) -> str:
    check_name(value)
    if len(value) > MAX_SERVICE_NAME_LENGTH:
        raise ValueError(
            f"invalid service name {value!r}: longer than {MAX_SERVICE_NAME_LENGTH} characters"
        )
    return value


def check_image(value: str) -> str:
    if value == "" or any(char.isspace() for char in value):
        raise ValueError(f"invalid image reference {value!r}: must be non-empty without spaces")
    return value


def check_absolute_path(value: str) -> str:
    if not value.startswith("/"):
        raise ValueError(f"path {value!r} must be absolute")
    return value


def check_hostname(value: str) -> str:
    labels = value.split(".")
    if len(value) > 253 or not all(_HOSTNAME_LABEL_RE.fullmatch(label) for label in labels):
        raise ValueError(
            f"invalid hostname {value!r}: dot-separated labels of letters, digits and '-', "
            "each at most 63 characters"
        )
    return value


def check_capability(value: str) -> str:
    if _CAPABILITY_RE.fullmatch(value) is None:
        raise ValueError(f"invalid capability {value!r}: expected a name like 'NET_ADMIN'")
    return value


def check_device(value: str) -> str:
    """Accept ``/dev/x``, ``/dev/x:/dev/y`` and ``/dev/x:/dev/y:rwm``."""
    parts = value.split(":")
    if len(parts) > 3:
        raise ValueError(f"invalid device {value!r}: expected 'host[:container[:permissions]]'")
    for path in parts[:2]:
        if not path.startswith("/"):
            raise ValueError(f"invalid device {value!r}: {path!r} must be an absolute path")
    if len(parts) == 3:
        permissions = parts[2]
        if (
            permissions == ""
            or not set(permissions) <= _DEVICE_PERMISSIONS
            or len(set(permissions)) != len(permissions)
        ):
            raise ValueError(
                f"invalid device {value!r}: permissions {permissions!r} must combine r, w and m"
            )
    return value


def check_tmpfs(value: str) -> str:
    """Accept ``/path`` or ``/path:options``."""
    path, colon, options = value.partition(":")
    if not path.startswith("/"):
        raise ValueError(f"invalid tmpfs {value!r}: {path!r} must be an absolute path")
    if colon and options == "":
        raise ValueError(f"invalid tmpfs {value!r}: empty options after ':'")
    return value


def check_restart(value: str) -> str:
    if _RESTART_RE.fullmatch(value) is None:
        raise ValueError(
            f"invalid restart policy {value!r}: expected no, always, unless-stopped, "
            "on-failure or on-failure:<max retries>"
        )
    return value


def check_stop_signal(value: str) -> str:
    if _SIGNAL_RE.fullmatch(value) is None:
        raise ValueError(f"invalid stop signal {value!r}: expected a name like 'SIGTERM'")
    return value


def check_network_mode(value: str) -> str:
    """Accept ``bridge``, ``host``, ``none``, ``service:<name>`` or ``container:<name>``."""
    if value in _SIMPLE_NETWORK_MODES:
        return value
    kind, colon, target = value.partition(":")
    if colon and kind in ("service", "container") and NAME_RE.fullmatch(target):
        return value
    raise ValueError(
        f"invalid network_mode {value!r}: expected bridge, host, none, service:<name> "
        "or container:<name>"
    )


def network_mode_service(network_mode: str | None) -> str | None:
    """Return the service named by ``service:<name>``, else ``None``."""
    if network_mode is not None and network_mode.startswith("service:"):
        return network_mode.removeprefix("service:")
    return None


def _port_spec(value: object) -> object:
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ValueError(f"invalid port {value!r}: expected a string or an integer")
    parse_port(value)
    return value


def _cpu_value(value: object) -> object:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError(f"invalid cpu value {value!r}: expected a string or a number")
    parse_cpu(value)
    return value


def _memory_value(value: object) -> object:
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ValueError(f"invalid memory value {value!r}: expected a string or an integer")
    parse_memory(value)
    return value


def _duration_value(value: object) -> object:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError(f"invalid duration {value!r}: expected a string or a number")
    parse_duration(value)
    return value


def _command_value(value: object) -> object:
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return value
    raise ValueError(f"expected a string or a list of strings, got {value!r}")


def _volume_spec(value: str) -> str:
    parse_volume(value)
    return value


PortSpec = Annotated[str | int, BeforeValidator(_port_spec)]
VolumeSpec = Annotated[str, AfterValidator(_volume_spec)]
CpuValue = Annotated[str | float | int, BeforeValidator(_cpu_value)]
MemoryValue = Annotated[str | int, BeforeValidator(_memory_value)]
DurationValue = Annotated[str | int | float, BeforeValidator(_duration_value)]
CommandValue = Annotated[str | list[str], BeforeValidator(_command_value)]
Name = Annotated[str, AfterValidator(check_name)]
ServiceName = Annotated[str, AfterValidator(check_service_name)]
ImageRef = Annotated[str, AfterValidator(check_image)]
AbsolutePath = Annotated[str, AfterValidator(check_absolute_path)]
Hostname = Annotated[str, AfterValidator(check_hostname)]
Capability = Annotated[str, AfterValidator(check_capability)]
DeviceSpec = Annotated[str, AfterValidator(check_device)]
TmpfsMount = Annotated[str, AfterValidator(check_tmpfs)]
RestartPolicy = Annotated[str, AfterValidator(check_restart)]
StopSignal = Annotated[str, AfterValidator(check_stop_signal)]
NetworkMode = Annotated[str, AfterValidator(check_network_mode)]

"""The device policy, read from the agent's environment only: neither the cloud's target
(its `config`) nor the Device API can widen what a target may do on the device.

Safe by default: no host path may be bound (named volumes always may), no container engine
socket, no privileged mode, added capabilities, devices or host network; and bounds on a
target's size.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from ..settings import AgentSettings

# Sockets that hand over the whole device (a container that reaches one controls the host).
DEFAULT_ENGINE_SOCKETS: Final = (
    "/var/run/docker.sock",
    "/run/docker.sock",
    "/var/run/containerd/containerd.sock",
    "/run/containerd/containerd.sock",
)
_CAPABILITY_RE: Final = re.compile(r"[A-Z][A-Z0-9_]{0,63}")

# The environment variable behind each rule: refusals name it, so the operator knows what
# would allow the request.
BIND_PREFIXES: Final = "DEVICE_POLICY_ALLOWED_BIND_PREFIXES"
ENGINE_SOCKET: Final = "DEVICE_POLICY_ALLOW_DOCKER_SOCKET"
PRIVILEGED: Final = "DEVICE_POLICY_ALLOW_PRIVILEGED"
CAPABILITIES: Final = "DEVICE_POLICY_ALLOWED_CAPABILITIES"
DEVICES: Final = "DEVICE_POLICY_ALLOWED_DEVICES"
HOST_NETWORK: Final = "DEVICE_POLICY_ALLOW_HOST_NETWORK"
MAX_APPS: Final = "DEVICE_POLICY_MAX_APPS"
MAX_SERVICES_PER_APP: Final = "DEVICE_POLICY_MAX_SERVICES_PER_APP"
MAX_SERVICES: Final = "DEVICE_POLICY_MAX_SERVICES"


@dataclass(frozen=True)
class DevicePolicy:
    allowed_bind_prefixes: tuple[str, ...] = ()  # normalised absolute paths
    allow_engine_socket: bool = False
    allow_privileged: bool = False
    allowed_capabilities: frozenset[str] = frozenset()  # without CAP_; "ALL" allows any
    allowed_devices: tuple[str, ...] = ()  # shell-style patterns of host device paths
    allow_host_network: bool = False
    max_apps: int = 50
    max_services_per_app: int = 50
    max_services: int = 100
    engine_sockets: tuple[str, ...] = DEFAULT_ENGINE_SOCKETS


def split_list(text: str) -> tuple[str, ...]:
    """A comma-separated setting, blanks dropped."""
    return tuple(part.strip() for part in text.split(",") if part.strip())


def capability_name(text: str) -> str:
    """`cap_net_admin`, `CAP_NET_ADMIN` and `NET_ADMIN` are one capability to Docker."""
    return text.strip().upper().removeprefix("CAP_")


def _absolute_paths(setting: str, text: str) -> tuple[str, ...]:
    paths = split_list(text)
    for path in paths:
        if not path.startswith("/"):
            raise ValueError(f"{setting}: {path!r} is not an absolute path")
    return tuple(posixpath.normpath(path) for path in paths)


def _capabilities(text: str) -> frozenset[str]:
    names = frozenset(capability_name(c) for c in split_list(text))
    for name in names:
        if _CAPABILITY_RE.fullmatch(name) is None:
            raise ValueError(f"{CAPABILITIES}: {name!r} is not a capability name like NET_ADMIN")
    return names


def _engine_socket(docker_host: str | None) -> tuple[str, ...]:
    if docker_host and docker_host.startswith("unix://"):
        path = posixpath.normpath(docker_host.removeprefix("unix://"))
        if path not in DEFAULT_ENGINE_SOCKETS:
            return (*DEFAULT_ENGINE_SOCKETS, path)
    return DEFAULT_ENGINE_SOCKETS


def device_policy(settings: AgentSettings) -> DevicePolicy:
    """The policy the settings describe; ValueError names the setting that is wrong."""
    return DevicePolicy(
        allowed_bind_prefixes=_absolute_paths(
            BIND_PREFIXES, settings.DEVICE_POLICY_ALLOWED_BIND_PREFIXES
        ),
        allow_engine_socket=settings.DEVICE_POLICY_ALLOW_DOCKER_SOCKET,
        allow_privileged=settings.DEVICE_POLICY_ALLOW_PRIVILEGED,
        allowed_capabilities=_capabilities(settings.DEVICE_POLICY_ALLOWED_CAPABILITIES),
        allowed_devices=_absolute_paths(DEVICES, settings.DEVICE_POLICY_ALLOWED_DEVICES),
        allow_host_network=settings.DEVICE_POLICY_ALLOW_HOST_NETWORK,
        max_apps=settings.DEVICE_POLICY_MAX_APPS,
        max_services_per_app=settings.DEVICE_POLICY_MAX_SERVICES_PER_APP,
        max_services=settings.DEVICE_POLICY_MAX_SERVICES,
        engine_sockets=_engine_socket(settings.DOCKER_HOST),
    )

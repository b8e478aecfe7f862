"""The small protocol every container engine adapter implements, and its errors."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Literal, Protocol

from ..orchestrator.model import EngineSnapshot, ServiceSpec


class EngineError(Exception):
    """An engine operation failed; the message is meant for the user."""


class EngineUnavailable(EngineError):
    """The engine cannot be reached at all (daemon down, socket missing)."""


class ImagePullError(EngineError):
    pass


class StartError(EngineError):
    pass


class ContainerNotFound(EngineError):
    """The engine has no container with that id (never existed, or removed since)."""


@dataclass(frozen=True)
class ContainerLogLine:
    """One line a container printed: the engine's RFC 3339 timestamp (Docker: nanoseconds,
    UTC, e.g. `2026-01-02T03:04:05.123456789Z`), the stream, the text without its newline."""

    timestamp: str
    stream: Literal["stdout", "stderr"]
    message: str


class Engine(Protocol):
    async def ping(self) -> bool:
        """True when the engine answers; never raises (a cheap liveness check)."""
        ...

    async def snapshot(self) -> EngineSnapshot: ...

    async def network_gateways(self) -> dict[str, str]:
        """The gateway address of each managed network (its host side), by network name."""
        ...

    async def pull_image(self, image: str) -> None: ...

    async def remove_image(self, image: str) -> None: ...

    async def create_network(self, name: str, app_id: int) -> None: ...

    async def remove_network(self, name: str) -> None: ...

    async def create_volume(self, name: str, app_id: int) -> None: ...

    async def remove_volume(self, name: str) -> None: ...

    async def start_service(self, spec: ServiceSpec) -> str:
        """Create the service's container unless it exists (by name), start it, return its id.
        Raises StartError when the engine refuses to create or start it."""
        ...

    async def stop_container(self, container_id: str, timeout_s: float) -> None: ...

    async def remove_container(self, container_id: str) -> None: ...

    async def pause_container(self, container_id: str) -> None: ...

    async def unpause_container(self, container_id: str) -> None: ...

    async def update_container(self, container_id: str, spec: ServiceSpec) -> None: ...

    async def connect_network(self, container_id: str, spec: ServiceSpec, network: str) -> None:
        """Attach the container to one of the service's networks, with the service's aliases
        there; attached already is not an error."""
        ...

    async def disconnect_network(self, container_id: str, network: str) -> None:
        """Detach the container from a network; not attached is not an error."""
        ...

    def container_logs(
        self, container_id: str, *, tail: int | None, follow: bool, since: float | None = None
    ) -> AsyncIterator[ContainerLogLine]:
        """The container's last `tail` lines (all of them for None; after `since`, a UNIX
        time, if given), oldest first; with `follow`, then every new line until the container
        stops. An async generator: close it (`aclose`) to stop early. Raises
        ContainerNotFound for an unknown container, EngineUnavailable when the engine cannot
        be reached."""
        ...


# Extra environment for a new container, from its spec and the gateway address of each managed
# network (the Device API's address for the app's services, device_api/app_access.py).
ServiceEnvironment = Callable[[ServiceSpec, Mapping[str, str]], Mapping[str, str]]

# Called with a container's id after it stopped and before it is removed: the log collector
# reads what the container printed last (removing it deletes its log).
BeforeRemove = Callable[[str], Awaitable[None]]

"""The steps the planner emits and the reconciler executes, one engine operation each.

Every step is idempotent at the engine level (creating what exists or removing what is gone
is not an error), so a pass interrupted at any point can simply be planned again.
"""

from __future__ import annotations

from dataclasses import dataclass

from .model import ServiceKey, ServiceSpec


@dataclass(frozen=True)
class FetchImage:
    image: str
    services: tuple[ServiceKey, ...]  # who waits for it, so a failure lands on them


@dataclass(frozen=True)
class RemoveImage:
    image: str


@dataclass(frozen=True)
class CreateNetwork:
    name: str
    app_id: int


@dataclass(frozen=True)
class RemoveNetwork:
    name: str


@dataclass(frozen=True)
class CreateVolume:
    name: str
    app_id: int


@dataclass(frozen=True)
class RemoveVolume:
    name: str


@dataclass(frozen=True)
class Start:
    """Create the service's container if it does not exist yet, then start it."""

    service: ServiceSpec


@dataclass(frozen=True)
class Stop:
    container_id: str
    service: ServiceKey
    timeout_s: float = 10.0


@dataclass(frozen=True)
class Kill:
    """Stop and remove: the container is being replaced or is no longer wanted."""

    container_id: str
    service: ServiceKey
    timeout_s: float = 10.0


@dataclass(frozen=True)
class Remove:
    container_id: str
    service: ServiceKey


@dataclass(frozen=True)
class Pause:
    container_id: str
    service: ServiceKey


@dataclass(frozen=True)
class Unpause:
    container_id: str
    service: ServiceKey


@dataclass(frozen=True)
class UpdateMetadata:
    """Apply in-place changes (restart policy, resource limits) without recreating."""

    container_id: str
    service: ServiceSpec


@dataclass(frozen=True)
class ConnectNetwork:
    """Attach a running (or paused) container to one of its service's networks again."""

    container_id: str
    service: ServiceSpec
    network: str


@dataclass(frozen=True)
class DisconnectNetwork:
    """Detach a container from one of the agent's networks its service does not use."""

    container_id: str
    service: ServiceKey
    network: str


@dataclass(frozen=True)
class TakeLock:
    app_id: int


@dataclass(frozen=True)
class ReleaseLock:
    app_id: int


@dataclass(frozen=True)
class Noop:
    """Nothing to do now but the target is not reached yet (waiting on a backoff or handover)."""

    reason: str
    service: ServiceKey | None = None
    retry_at: float | None = None


Step = (
    FetchImage
    | RemoveImage
    | CreateNetwork
    | RemoveNetwork
    | CreateVolume
    | RemoveVolume
    | Start
    | Stop
    | Kill
    | Remove
    | Pause
    | Unpause
    | UpdateMetadata
    | ConnectNetwork
    | DisconnectNetwork
    | TakeLock
    | ReleaseLock
    | Noop
)

"""The small protocol every container engine adapter implements, and step dispatch onto it."""

from __future__ import annotations

from typing import Protocol

from .model import EngineSnapshot, ServiceSpec
from .steps import (
    CreateNetwork,
    CreateVolume,
    FetchImage,
    Kill,
    Noop,
    Pause,
    ReleaseLock,
    Remove,
    RemoveImage,
    RemoveNetwork,
    RemoveVolume,
    Start,
    Step,
    Stop,
    TakeLock,
    Unpause,
    UpdateMetadata,
)


class EngineError(Exception):
    """An engine operation failed; the message is meant for the user."""


class EngineUnavailable(EngineError):
    """The engine cannot be reached at all (daemon down, socket missing)."""


class ImagePullError(EngineError):
    pass


class StartError(EngineError):
    pass


class Engine(Protocol):
    async def snapshot(self) -> EngineSnapshot: ...

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


async def apply_step(engine: Engine, step: Step) -> str | None:
    """Carry out one engine step; a start returns the container's id. Lock and noop steps
    are the reconciler's own business."""
    match step:
        case FetchImage(image=image):
            await engine.pull_image(image)
        case RemoveImage(image=image):
            await engine.remove_image(image)
        case CreateNetwork(name=name, app_id=app_id):
            await engine.create_network(name, app_id)
        case RemoveNetwork(name=name):
            await engine.remove_network(name)
        case CreateVolume(name=name, app_id=app_id):
            await engine.create_volume(name, app_id)
        case RemoveVolume(name=name):
            await engine.remove_volume(name)
        case Start(service=spec):
            return await engine.start_service(spec)
        case Stop(container_id=cid, timeout_s=timeout):
            await engine.stop_container(cid, timeout)
        case Kill(container_id=cid, timeout_s=timeout):
            await engine.stop_container(cid, timeout)
            await engine.remove_container(cid)
        case Remove(container_id=cid):
            await engine.remove_container(cid)
        case Pause(container_id=cid):
            await engine.pause_container(cid)
        case Unpause(container_id=cid):
            await engine.unpause_container(cid)
        case UpdateMetadata(container_id=cid, service=spec):
            await engine.update_container(cid, spec)
        case TakeLock() | ReleaseLock() | Noop():
            pass
    return None

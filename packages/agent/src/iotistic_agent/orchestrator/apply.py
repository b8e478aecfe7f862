"""Carrying out one planned step on the engine."""

from __future__ import annotations

from ..engine.protocol import BeforeRemove, Engine
from .steps import (
    ConnectNetwork,
    CreateNetwork,
    CreateVolume,
    DisconnectNetwork,
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


async def apply_step(
    engine: Engine, step: Step, before_remove: BeforeRemove | None = None
) -> str | None:
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
            if before_remove is not None:
                await before_remove(cid)
            await engine.remove_container(cid)
        case Remove(container_id=cid):
            if before_remove is not None:
                await before_remove(cid)
            await engine.remove_container(cid)
        case Pause(container_id=cid):
            await engine.pause_container(cid)
        case Unpause(container_id=cid):
            await engine.unpause_container(cid)
        case UpdateMetadata(container_id=cid, service=spec):
            await engine.update_container(cid, spec)
        case ConnectNetwork(container_id=cid, service=spec, network=network):
            await engine.connect_network(cid, spec, network)
        case DisconnectNetwork(container_id=cid, network=network):
            await engine.disconnect_network(cid, network)
        case TakeLock() | ReleaseLock() | Noop():
            pass
    return None

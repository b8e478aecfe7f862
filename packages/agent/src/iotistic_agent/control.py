"""Operator actions on apps and services (iotctl), carried out between two passes."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

from .engine.protocol import BeforeRemove, Engine, StartError
from .orchestrator.model import EngineSnapshot, ServiceKey, ServiceSpec
from .orchestrator.reconciler import Reconciler
from .store.target_store import TargetStore


class Control:
    def __init__(
        self,
        targets: TargetStore,
        reconciler: Reconciler,
        engine: Engine,
        before_remove: BeforeRemove | None = None,
    ) -> None:
        """``before_remove``: called before a container is removed (its log is read)."""
        self._targets = targets
        self._reconciler = reconciler
        self._engine = engine
        self._before_remove = before_remove

    def app_services(self, app_id: int) -> list[ServiceKey]:
        app = self._targets.declared_target().get(app_id)
        return [s.key for s in app.services] if app else []

    async def stop(self, keys: Sequence[ServiceKey]) -> None:
        """Stopped until started again or their target changes (persisted)."""
        self._targets.set_stopped(list(keys))
        self._reconciler.wake()

    async def start(self, keys: Sequence[ServiceKey]) -> None:
        self._targets.clear_overrides(list(keys))
        self._reconciler.forget_failures(keys)
        self._reconciler.wake()

    async def restart_service(self, key: ServiceKey) -> None:
        """Restart the container even when nothing drifted (same container, new process)."""
        async with self._reconciler.exclusive():
            self._targets.clear_overrides([key])
            self._reconciler.forget_failures([key])
            snapshot = await self._engine.snapshot()
            spec = self._spec(key)
            for c in snapshot.containers_of(key):
                if c.status in ("running", "paused", "restarting"):
                    await self._engine.stop_container(c.id, c.stop_grace_s)
                if spec is not None and c.config_hash == spec.config_hash:
                    # A container that will not start again is the service's StartFailure,
                    # which the next pass records with its backoff; not the caller's error.
                    with contextlib.suppress(StartError):
                        await self._engine.start_service(spec)

    async def recreate_app(self, app_id: int) -> None:
        """Remove every container of the app; the next pass creates them anew."""
        keys = self.app_services(app_id)
        async with self._reconciler.exclusive():
            self._targets.clear_overrides(keys)
            self._reconciler.forget_failures(keys)
            await self._remove_containers(app_id)

    async def purge_app(self, app_id: int) -> None:
        """Remove the app's containers and its volumes (its data); it then comes back empty."""
        async with self._reconciler.exclusive():
            snapshot = await self._remove_containers(app_id)
            # Removing containers leaves the volume list as it was in that snapshot.
            for name, owner in snapshot.volumes.items():
                if owner == app_id:
                    await self._engine.remove_volume(name)

    async def _remove_containers(self, app_id: int) -> EngineSnapshot:
        """Stop and remove the app's containers; returns the snapshot it worked from."""
        snapshot = await self._engine.snapshot()
        for c in snapshot.containers:
            if c.app_id == app_id:
                await self._engine.stop_container(c.id, c.stop_grace_s)
                if self._before_remove is not None:
                    await self._before_remove(c.id)
                await self._engine.remove_container(c.id)
        return snapshot

    def _spec(self, key: ServiceKey) -> ServiceSpec | None:
        app = self._targets.current_target().get(key[0])
        return app.service(key[1]) if app else None

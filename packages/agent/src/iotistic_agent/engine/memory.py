"""An in-memory engine with Docker's semantics, for planner properties and pure tests."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from datetime import datetime

from ..orchestrator.model import ContainerInfo, EngineSnapshot, ServiceSpec
from .protocol import ContainerLogLine, ContainerNotFound, EngineError, ImagePullError, StartError


@dataclass
class MemoryEngine:
    registry: set[str] = field(default_factory=set)  # images that can be pulled
    images: set[str] = field(default_factory=set)
    containers: dict[str, ContainerInfo] = field(default_factory=dict)
    networks: dict[str, int] = field(default_factory=dict)
    volumes: dict[str, int] = field(default_factory=dict)
    unstartable: set[str] = field(default_factory=set)  # images whose containers fail to start
    log: list[str] = field(default_factory=list)  # operations in order, for strategy tests
    logs: dict[str, list[ContainerLogLine]] = field(default_factory=dict)  # container output
    clock: float = 0.0
    _ids: itertools.count[int] = field(default_factory=itertools.count)

    async def ping(self) -> bool:
        return True

    async def network_gateways(self) -> dict[str, str]:
        # Made up but stable: 10.<n>.0.1 for the n-th network by name.
        return {name: f"10.{n}.0.1" for n, name in enumerate(sorted(self.networks), start=1)}

    async def snapshot(self) -> EngineSnapshot:
        return EngineSnapshot(
            containers=tuple(self.containers.values()),
            images=frozenset(self.images),
            networks=dict(self.networks),
            volumes=dict(self.volumes),
        )

    async def pull_image(self, image: str) -> None:
        self.log.append(f"pull {image}")
        if image not in self.registry:
            raise ImagePullError(f"manifest unknown: {image}")
        self.images.add(image)

    async def remove_image(self, image: str) -> None:
        if any(c.image == image for c in self.containers.values()):
            raise EngineError(f"image {image} is in use")
        self.log.append(f"rmi {image}")
        self.images.discard(image)

    async def create_network(self, name: str, app_id: int) -> None:
        self.networks.setdefault(name, app_id)

    async def remove_network(self, name: str) -> None:
        self.networks.pop(name, None)

    async def create_volume(self, name: str, app_id: int) -> None:
        self.volumes.setdefault(name, app_id)

    async def remove_volume(self, name: str) -> None:
        self.volumes.pop(name, None)

    async def start_service(self, spec: ServiceSpec) -> str:
        existing = next(
            (c for c in self.containers.values() if c.name == spec.container_name), None
        )
        if existing is None:
            if spec.image not in self.images:
                raise StartError(f"image {spec.image} not present")
            missing = [n for n in spec.network_names if n not in self.networks]
            missing += [v for v in spec.volume_names if v not in self.volumes]
            if missing:
                raise StartError(f"missing {', '.join(missing)}")
            existing = ContainerInfo(
                id=f"c{next(self._ids)}",
                name=spec.container_name,
                app_id=spec.app_id,
                service_id=spec.service_id,
                service_name=spec.service_name,
                image=spec.image,
                config_hash=spec.config_hash,
                status="created",
                created_at=self.clock,
                restart=spec.restart,
                nano_cpus=spec.nano_cpus,
                memory_bytes=spec.memory_bytes,
                memory_reservation_bytes=spec.memory_reservation_bytes,
                networks=spec.network_names,
                stop_grace_s=spec.stop_grace_s,
                depends_on=spec.depends_on,
            )
            self.log.append(f"create {spec.service_name} {spec.image}")
        # Like Docker's adapter: networks it was disconnected from are joined before the start.
        existing = replace(
            existing, networks=tuple(sorted({*existing.networks, *spec.network_names}))
        )
        self.containers[existing.id] = existing
        if spec.image in self.unstartable:
            raise StartError(f"cannot start {spec.service_name}")
        if existing.status != "running":
            self.log.append(f"start {spec.service_name} {spec.image}")
            self.containers[existing.id] = replace(
                existing, status="running", started_at=self.clock
            )
        return existing.id

    async def stop_container(self, container_id: str, timeout_s: float) -> None:
        c = self.containers.get(container_id)
        if c is not None and c.status in ("running", "paused", "restarting"):
            self.log.append(f"stop {c.service_name} {c.image}")
            self.containers[container_id] = replace(c, status="exited", exit_code=0)

    async def remove_container(self, container_id: str) -> None:
        c = self.containers.pop(container_id, None)
        if c is not None:
            self.log.append(f"remove {c.service_name} {c.image}")

    async def pause_container(self, container_id: str) -> None:
        c = self.containers[container_id]
        if c.status == "running":
            self.containers[container_id] = replace(c, status="paused")

    async def unpause_container(self, container_id: str) -> None:
        c = self.containers[container_id]
        if c.status == "paused":
            self.containers[container_id] = replace(c, status="running")

    async def update_container(self, container_id: str, spec: ServiceSpec) -> None:
        c = self.containers[container_id]
        self.log.append(f"update {c.service_name}")
        self.containers[container_id] = replace(
            c,
            restart=spec.restart,
            nano_cpus=spec.nano_cpus,
            memory_bytes=spec.memory_bytes,
            memory_reservation_bytes=spec.memory_reservation_bytes,
        )

    async def connect_network(self, container_id: str, spec: ServiceSpec, network: str) -> None:
        if network not in self.networks:
            raise EngineError(f"network {network} not found")
        c = self.containers[container_id]
        self.log.append(f"connect {c.service_name} {network}")
        self.containers[container_id] = replace(c, networks=tuple(sorted({*c.networks, network})))

    async def disconnect_network(self, container_id: str, network: str) -> None:
        c = self.containers[container_id]
        self.log.append(f"disconnect {c.service_name} {network}")
        self.containers[container_id] = replace(
            c, networks=tuple(n for n in c.networks if n != network)
        )

    async def container_logs(
        self, container_id: str, *, tail: int | None, follow: bool, since: float | None = None
    ) -> AsyncIterator[ContainerLogLine]:
        """The recorded lines; nothing is ever appended later, so `follow` ends at once."""
        if container_id not in self.containers and container_id not in self.logs:
            raise ContainerNotFound(f"no such container: {container_id}")
        lines = self.logs.get(container_id, [])
        if since is not None:
            lines = [line for line in lines if _epoch(line.timestamp) >= since]
        if tail is not None:
            lines = lines[-tail:] if tail > 0 else []
        for line in lines:
            yield line


def _epoch(timestamp: str) -> float:
    try:
        return datetime.fromisoformat(timestamp).timestamp()
    except ValueError:
        return float("inf")  # unknown time: never filtered out

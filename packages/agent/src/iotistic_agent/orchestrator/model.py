"""The planner's view of the world: normalised target specs and observed engine state.

Everything here is immutable and engine-neutral, so that the planner stays a pure function
and can be driven by the in-memory engine in tests exactly as by Docker in production.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from functools import cached_property
from typing import Any, Literal

# Labels the agent puts on everything it creates; objects without them are never touched.
LABEL_MANAGED = "io.iotistic.managed"
# The device whose agent created it: agents sharing an engine never touch each other's.
LABEL_DEVICE_UUID = "io.iotistic.device-uuid"
LABEL_APP_ID = "io.iotistic.app-id"
LABEL_APP_NAME = "io.iotistic.app-name"
LABEL_SERVICE_ID = "io.iotistic.service-id"
LABEL_SERVICE_NAME = "io.iotistic.service-name"
LABEL_CONFIG_HASH = "io.iotistic.config-hash"
LABEL_STRATEGY = "io.iotistic.update-strategy"
LABEL_HANDOVER_TIMEOUT = "io.iotistic.handover-timeout"
# The services a container's service depended on when it was created (comma-separated): a
# container whose service has left the target still stops before its dependencies.
LABEL_DEPENDS_ON = "io.iotistic.depends-on"
DEFAULT_STOP_GRACE_S = 10.0  # Docker's own default when a container has no StopTimeout

ServiceState = Literal["running", "stopped", "paused"]
UpdateStrategy = Literal[
    "download-then-kill", "kill-then-download", "delete-then-download", "hand-over"
]
ContainerStatus = Literal[
    "created", "running", "paused", "restarting", "exited", "dead", "removing"
]


@dataclass(frozen=True, order=True)
class PortBinding:
    container_port: int
    protocol: str
    host_ip: str
    host_port: int | None


@dataclass(frozen=True, order=True)
class Mount:
    kind: str  # "volume" | "bind" | "anonymous"
    source: str  # full engine volume name for named volumes, host path for binds, "" otherwise
    target: str
    read_only: bool


@dataclass(frozen=True)
class Healthcheck:
    test: tuple[str, ...]
    interval_ns: int | None
    timeout_ns: int | None
    start_period_ns: int | None
    retries: int | None


@dataclass(frozen=True)
class ServiceSpec:
    """One service of the target, normalised: comparable field by field, hashable as a whole."""

    app_id: int
    app_name: str
    service_id: int
    service_name: str
    image: str
    state: ServiceState = "running"
    strategy: UpdateStrategy = "download-then-kill"
    handover_timeout_s: float = 60.0
    command: tuple[str, ...] | None = None
    entrypoint: tuple[str, ...] | None = None
    environment: tuple[tuple[str, str], ...] = ()
    ports: tuple[PortBinding, ...] = ()
    mounts: tuple[Mount, ...] = ()
    networks: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (engine network name, aliases)
    network_mode: str | None = None
    labels: tuple[tuple[str, str], ...] = ()
    user: str | None = None
    working_dir: str | None = None
    privileged: bool = False
    devices: tuple[str, ...] = ()
    cap_add: tuple[str, ...] = ()
    cap_drop: tuple[str, ...] = ()
    tmpfs: tuple[tuple[str, str], ...] = ()
    healthcheck: Healthcheck | None = None
    hostname: str | None = None
    stop_signal: str | None = None
    stop_grace_s: float = DEFAULT_STOP_GRACE_S
    depends_on: tuple[str, ...] = ()
    # Mutable in place (docker update): never a reason to recreate.
    restart: str = "always"
    nano_cpus: int | None = None
    memory_bytes: int | None = None
    memory_reservation_bytes: int | None = None
    config_hash: str = ""

    @property
    def key(self) -> ServiceKey:
        return (self.app_id, self.service_name)

    @property
    def container_name(self) -> str:
        # Deterministic, so a create repeated after a crash collides instead of duplicating.
        return f"{self.service_name}_{self.app_id}_{self.config_hash[:12]}"

    @property
    def volume_names(self) -> tuple[str, ...]:
        return tuple(m.source for m in self.mounts if m.kind == "volume")

    @property
    def network_names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.networks)


ServiceKey = tuple[int, str]  # (app id, service name)

# Fields whose change is applied in place (docker update) or is the agent's own business:
# everything else needs a new container, so it goes into the config hash.
_NOT_HASHED = frozenset(
    {
        "app_name",
        "service_id",
        "state",
        "strategy",
        "handover_timeout_s",
        "depends_on",
        "restart",
        "nano_cpus",
        "memory_bytes",
        "memory_reservation_bytes",
        "config_hash",
    }
)


def changed_fields(old: ServiceSpec, new: ServiceSpec) -> list[str]:
    """Names of the fields that differ between two specs of a service (for the logs)."""
    before, after = asdict(old), asdict(new)
    return [k for k in before if k != "config_hash" and before[k] != after[k]]


def config_hash(spec: ServiceSpec) -> str:
    fields: dict[str, Any] = {k: v for k, v in asdict(spec).items() if k not in _NOT_HASHED}
    blob = json.dumps(fields, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


@dataclass(frozen=True)
class AppSpec:
    app_id: int
    app_name: str
    services: tuple[ServiceSpec, ...]
    networks: tuple[str, ...]  # engine names, e.g. "1001_default"
    volumes: tuple[str, ...]  # engine names, e.g. "1001_data"

    def service(self, name: str) -> ServiceSpec | None:
        return next((s for s in self.services if s.service_name == name), None)

    @property
    def images(self) -> frozenset[str]:
        return frozenset(s.image for s in self.services)


@dataclass(frozen=True)
class ContainerInfo:
    """A managed container as the engine reports it."""

    id: str
    name: str
    app_id: int
    service_id: int
    service_name: str
    image: str
    config_hash: str
    status: ContainerStatus
    created_at: float = 0.0
    started_at: float = 0.0
    exit_code: int = 0
    restart_count: int = 0
    restart: str = "always"
    nano_cpus: int | None = None
    memory_bytes: int | None = None
    memory_reservation_bytes: int | None = None
    health: str | None = None  # "starting" | "healthy" | "unhealthy" | None
    networks: tuple[str, ...] = ()  # engine networks the container is attached to
    # Read back from the container, not the target: a service that left the target still
    # gets its own grace period and stop order.
    stop_grace_s: float = DEFAULT_STOP_GRACE_S
    depends_on: tuple[str, ...] = ()

    @property
    def key(self) -> ServiceKey:
        return (self.app_id, self.service_name)

    @property
    def is_running(self) -> bool:
        return self.status in ("running", "restarting")


@dataclass(frozen=True)
class EngineSnapshot:
    containers: tuple[ContainerInfo, ...] = ()
    images: frozenset[str] = frozenset()
    networks: Mapping[str, int] = field(default_factory=dict)  # managed network -> app id
    volumes: Mapping[str, int] = field(default_factory=dict)  # managed volume -> app id

    @cached_property
    def _by_service(self) -> dict[ServiceKey, tuple[ContainerInfo, ...]]:
        index: dict[ServiceKey, list[ContainerInfo]] = {}
        for c in self.containers:
            index.setdefault(c.key, []).append(c)
        return {k: tuple(v) for k, v in index.items()}

    def containers_of(self, key: ServiceKey) -> tuple[ContainerInfo, ...]:
        return self._by_service.get(key, ())


FailureReason = Literal["ImagePullBackOff", "ErrImagePull", "StartFailure", "CrashLoopBackOff"]


@dataclass(frozen=True)
class FailureRecord:
    """Why a service is not converging, and when the reconciler may try again."""

    reason: FailureReason
    message: str
    retry_count: int
    next_retry_at: float
    last_failure_at: float
    config_hash: str  # the target the failures belong to: a new target clears the record
    gave_up: bool = False
    marker: str = ""  # identifies the last crash counted, so one exit is never counted twice

    @property
    def display_reason(self) -> str:
        # Kubernetes wording: a pull that will not be retried any more is ErrImagePull.
        if self.gave_up and self.reason == "ImagePullBackOff":
            return "ErrImagePull"
        return self.reason


def current_failure(
    spec: ServiceSpec, failures: Mapping[ServiceKey, FailureRecord]
) -> FailureRecord | None:
    """The service's failure record if it belongs to this target: a changed service starts
    with a clean slate."""
    record = failures.get(spec.key)
    return record if record is not None and record.config_hash == spec.config_hash else None


# Restart policies under which an exit 0 is the end of the job, not a crash (Docker restarts
# neither on success either).
_JOB_POLICIES = frozenset({"no", "on-failure"})


def finished_job(spec: ServiceSpec, c: ContainerInfo, agent_stopped: frozenset[str]) -> bool:
    """The container of a `restart: "no"` or `"on-failure"` service exited 0 by itself (not
    stopped by the agent): its job is done, it is not started again (the init-job pattern),
    and services that depend on it may start."""
    return (
        spec.restart.partition(":")[0] in _JOB_POLICIES
        and c.status == "exited"
        and c.exit_code == 0
        and c.id not in agent_stopped
    )


def missing_networks(spec: ServiceSpec, c: ContainerInfo) -> tuple[str, ...]:
    """The service's networks the container is not attached to (disconnected by hand)."""
    if spec.network_mode is not None:
        return ()
    return tuple(n for n in spec.network_names if n not in c.networks)


@dataclass(frozen=True)
class PlanContext:
    now: float
    failures: Mapping[ServiceKey, FailureRecord] = field(default_factory=dict)
    locks: frozenset[int] = frozenset()  # apps whose update lock the agent holds
    # Containers the agent stopped itself: an exit 0 there is no finished job (observe.py).
    agent_stopped: frozenset[str] = frozenset()

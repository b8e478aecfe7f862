"""Pure translation between the planner's model and Docker Engine API bodies (API 1.41).

No I/O here: `DockerEngine` sends what these functions build and feeds them what the engine
returns, so every field mapping can be unit-tested without a daemon.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, cast, get_args

from ..orchestrator.model import (
    DEFAULT_STOP_GRACE_S,
    LABEL_APP_ID,
    LABEL_APP_NAME,
    LABEL_CONFIG_HASH,
    LABEL_DEPENDS_ON,
    LABEL_SERVICE_ID,
    LABEL_SERVICE_NAME,
    ContainerInfo,
    ContainerStatus,
    ServiceSpec,
)
from .ownership import Ownership

ZERO_TIME = "0001-01-01T00:00:00Z"
_DEVICE_MODES = frozenset("rwm")


def managed_labels(app_id: int, owner: Ownership) -> dict[str, str]:
    """Labels of the networks and volumes the agent creates."""
    return {**owner.labels, LABEL_APP_ID: str(app_id)}


def container_labels(spec: ServiceSpec, owner: Ownership) -> dict[str, str]:
    """The user's labels plus the agent's own, which always win."""
    labels = dict(spec.labels)
    labels.update(
        {
            **owner.labels,
            LABEL_APP_ID: str(spec.app_id),
            LABEL_APP_NAME: spec.app_name,
            LABEL_SERVICE_ID: str(spec.service_id),
            LABEL_SERVICE_NAME: spec.service_name,
            LABEL_CONFIG_HASH: spec.config_hash,
        }
    )
    if spec.depends_on:
        labels[LABEL_DEPENDS_ON] = ",".join(spec.depends_on)
    else:
        labels.pop(LABEL_DEPENDS_ON, None)
    return labels


def split_image_ref(ref: str) -> tuple[str, str | None]:
    """`host:5000/a/b:v1` -> (`host:5000/a/b`, `v1`); a digest reference is not split.

    Only a colon in the last path segment separates a tag: the registry host may carry a port.
    """
    if "@" in ref:
        return ref, None
    head, sep, last = ref.rpartition("/")
    name, colon, tag = last.partition(":")
    if not colon:
        return ref, None
    return f"{head}{sep}{name}", tag


def restart_policy(restart: str) -> dict[str, Any]:
    """Compose restart value -> HostConfig.RestartPolicy (`on-failure:3` carries a count)."""
    name, _, count = restart.partition(":")
    if name in ("", "no"):
        return {"Name": "no", "MaximumRetryCount": 0}
    policy: dict[str, Any] = {"Name": name, "MaximumRetryCount": 0}
    if name == "on-failure" and count:
        policy["MaximumRetryCount"] = int(count)
    return policy


def restart_from_policy(policy: Mapping[str, Any] | None) -> str:
    """HostConfig.RestartPolicy -> the compose spelling the planner compares with."""
    policy = policy or {}
    name = str(policy.get("Name") or "no")
    retries = int(policy.get("MaximumRetryCount") or 0)
    if name == "on-failure" and retries > 0:
        return f"on-failure:{retries}"
    return name


def parse_device(value: str) -> dict[str, str]:
    """`/dev/a[:/dev/b][:rwm]` -> a DeviceMapping, read like the docker CLI reads `--device`."""
    parts = value.split(":")
    host = parts[0]
    target = host
    perms = "rwm"
    if len(parts) == 2:
        if parts[1] and set(parts[1]) <= _DEVICE_MODES:
            perms = parts[1]
        else:
            target = parts[1]
    elif len(parts) >= 3:
        target, perms = parts[1] or host, parts[2] or "rwm"
    return {"PathOnHost": host, "PathInContainer": target, "CgroupPermissions": perms}


def endpoint_config(spec: ServiceSpec, aliases: tuple[str, ...]) -> dict[str, Any]:
    """Every network knows the container by its service name, plus the configured aliases."""
    names = [spec.service_name, *(a for a in aliases if a != spec.service_name)]
    return {"Aliases": names}


def _port_key(container_port: int, protocol: str) -> str:
    return f"{container_port}/{protocol}"


def _healthcheck(spec: ServiceSpec) -> dict[str, Any] | None:
    hc = spec.healthcheck
    if hc is None:
        return None
    body: dict[str, Any] = {"Test": list(hc.test)}
    for key, value in (
        ("Interval", hc.interval_ns),
        ("Timeout", hc.timeout_ns),
        ("StartPeriod", hc.start_period_ns),
        ("Retries", hc.retries),
    ):
        if value is not None:
            body[key] = value
    return body


def _mounts(spec: ServiceSpec) -> tuple[list[dict[str, Any]], list[str]]:
    """Named and anonymous volumes as `Mounts`; bind mounts as `Binds`.

    Binds rather than Mounts because Docker 20.10 refuses a `Mounts` bind whose host path
    does not exist ("bind source path does not exist") and API 1.41 has no CreateMountpoint;
    the compose short syntax (`./data:/data`) that services are written in creates it.
    """
    mounts: list[dict[str, Any]] = []
    binds: list[str] = []
    for m in spec.mounts:
        if m.kind == "bind":
            binds.append(f"{m.source}:{m.target}" + (":ro" if m.read_only else ""))
            continue
        mount: dict[str, Any] = {"Type": "volume", "Target": m.target, "ReadOnly": m.read_only}
        if m.kind == "volume":
            mount["Source"] = m.source
        elif m.kind != "anonymous":
            raise ValueError(f"unknown mount kind {m.kind!r} for {m.target}")
        mounts.append(mount)
    return mounts, binds


def network_gateways(networks: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """`GET /networks` entries -> the first gateway of each (IPv4 before IPv6)."""
    found: dict[str, str] = {}
    for network in networks:
        configs = (network.get("IPAM") or {}).get("Config") or []
        gateways = [c["Gateway"] for c in configs if c.get("Gateway")]
        gateways.sort(key=lambda address: ":" in address)
        if gateways:
            found[network["Name"]] = gateways[0]
    return found


def container_create_body(
    spec: ServiceSpec, resolved_network_mode: str | None, owner: Ownership
) -> dict[str, Any]:
    """The `POST /containers/create` body for a service.

    `resolved_network_mode` replaces `spec.network_mode` when the engine had to resolve it
    (`service:db` -> `container:<id>`); None keeps `spec.network_mode`. With networks, the
    first one is the NetworkMode and the only entry of NetworkingConfig: API 1.41 accepts
    one endpoint at create time, the engine connects the others before starting.
    """
    host: dict[str, Any] = {
        "RestartPolicy": restart_policy(spec.restart),
        "Privileged": spec.privileged,
    }
    body: dict[str, Any] = {
        "Image": spec.image,
        "Env": [f"{k}={v}" for k, v in spec.environment],
        "Labels": container_labels(spec, owner),
        "HostConfig": host,
    }
    if spec.command is not None:
        body["Cmd"] = list(spec.command)
    if spec.entrypoint is not None:
        # An empty list (not a missing key) clears the image's entrypoint.
        body["Entrypoint"] = list(spec.entrypoint)
    for key, value in (
        ("User", spec.user),
        ("WorkingDir", spec.working_dir),
        ("Hostname", spec.hostname),
        ("StopSignal", spec.stop_signal),
    ):
        if value is not None:
            body[key] = value
    body["StopTimeout"] = math.ceil(spec.stop_grace_s)
    healthcheck = _healthcheck(spec)
    if healthcheck is not None:
        body["Healthcheck"] = healthcheck

    if spec.ports:
        exposed: dict[str, dict[str, Any]] = {}
        bindings: dict[str, list[dict[str, str]]] = {}
        for p in spec.ports:
            key = _port_key(p.container_port, p.protocol)
            exposed[key] = {}
            bindings.setdefault(key, []).append(
                {"HostIp": p.host_ip, "HostPort": "" if p.host_port is None else str(p.host_port)}
            )
        body["ExposedPorts"] = exposed
        host["PortBindings"] = bindings

    mounts, binds = _mounts(spec)
    if mounts:
        host["Mounts"] = mounts
    if binds:
        host["Binds"] = binds
    if spec.tmpfs:
        host["Tmpfs"] = dict(spec.tmpfs)
    if spec.devices:
        host["Devices"] = [parse_device(d) for d in spec.devices]
    if spec.cap_add:
        host["CapAdd"] = list(spec.cap_add)
    if spec.cap_drop:
        host["CapDrop"] = list(spec.cap_drop)
    host.update(resources_body(spec, clear=False))

    if spec.networks:
        first, aliases = spec.networks[0]
        host["NetworkMode"] = first
        body["NetworkingConfig"] = {"EndpointsConfig": {first: endpoint_config(spec, aliases)}}
    else:
        mode = resolved_network_mode if resolved_network_mode is not None else spec.network_mode
        if mode is not None:
            if mode.startswith("service:"):
                raise ValueError(f"network_mode {mode!r} must be resolved to container:<id>")
            host["NetworkMode"] = mode
    return body


def resources_body(spec: ServiceSpec, *, clear: bool) -> dict[str, Any]:
    """CPU and memory limits. With `clear`, an unset limit is sent as 0 (for updates).

    MemorySwap is -1 (no separate swap limit) whenever Memory is set: otherwise Docker keeps
    the swap limit it derived at create time (2 x memory) and refuses to raise Memory above it
    ("Memory limit should be smaller than already set memoryswap limit").
    """
    body: dict[str, Any] = {}
    for key, value in (
        ("NanoCpus", spec.nano_cpus),
        ("Memory", spec.memory_bytes),
        ("MemoryReservation", spec.memory_reservation_bytes),
    ):
        if value is not None:
            body[key] = value
        elif clear:
            body[key] = 0
    if spec.memory_bytes is not None:
        body["MemorySwap"] = -1
    return body


def update_body(spec: ServiceSpec) -> dict[str, Any]:
    """The `POST /containers/{id}/update` body: restart policy and resources."""
    return {"RestartPolicy": restart_policy(spec.restart), **resources_body(spec, clear=True)}


def limits_not_cleared(spec: ServiceSpec, host_config: Mapping[str, Any]) -> list[str]:
    """Limits a container has that the spec removes: `update_body` cannot clear them.

    Docker 20.10 reads 0 in `POST /containers/{id}/update` as "leave unchanged" (and refuses
    -1: "Minimum memory limit allowed is 6MB"), so only a new container drops a limit.
    """
    wanted = {
        "NanoCpus": spec.nano_cpus,
        "Memory": spec.memory_bytes,
        "MemoryReservation": spec.memory_reservation_bytes,
    }
    return [key for key, value in wanted.items() if value is None and host_config.get(key)]


def parse_docker_time(value: str | None) -> float:
    """RFC 3339 with nanoseconds -> epoch seconds; the zero time (never) -> 0.0."""
    if not value or value.startswith("0001-01-01"):
        return 0.0
    try:
        # Python 3.11 reads "Z" and nine fraction digits (it keeps six).
        return datetime.fromisoformat(value).timestamp()
    except ValueError:
        return 0.0


def _positive(value: Any) -> int | None:
    return int(value) if value else None


_STATUSES = frozenset(get_args(ContainerStatus))


def container_info(inspect: Mapping[str, Any], owner: Ownership) -> ContainerInfo | None:
    """`GET /containers/{id}/json` -> ContainerInfo; None unless it is this agent's."""
    config = inspect.get("Config") or {}
    labels: Mapping[str, str] = config.get("Labels") or {}
    if not owner.owns(labels):
        return None
    try:
        app_id = int(labels[LABEL_APP_ID])
        service_id = int(labels[LABEL_SERVICE_ID])
        service_name = labels[LABEL_SERVICE_NAME]
        config_hash = labels[LABEL_CONFIG_HASH]
    except (KeyError, ValueError):
        return None
    state = inspect.get("State") or {}
    host = inspect.get("HostConfig") or {}
    status = str(state.get("Status") or "dead")
    health = (state.get("Health") or {}).get("Status") or None
    return ContainerInfo(
        id=str(inspect["Id"]),
        name=str(inspect.get("Name", "")).lstrip("/"),
        app_id=app_id,
        service_id=service_id,
        service_name=service_name,
        image=str(config.get("Image", "")),
        config_hash=config_hash,
        status=cast(ContainerStatus, status if status in _STATUSES else "dead"),
        created_at=parse_docker_time(inspect.get("Created")),
        started_at=parse_docker_time(state.get("StartedAt")),
        exit_code=int(state.get("ExitCode") or 0),
        restart_count=int(inspect.get("RestartCount") or 0),
        restart=restart_from_policy(host.get("RestartPolicy")),
        nano_cpus=_positive(host.get("NanoCpus")),
        memory_bytes=_positive(host.get("Memory")),
        memory_reservation_bytes=_positive(host.get("MemoryReservation")),
        health=health,
        networks=tuple(sorted((inspect.get("NetworkSettings") or {}).get("Networks") or {})),
        stop_grace_s=_stop_grace(config.get("StopTimeout")),
        depends_on=tuple(n for n in labels.get(LABEL_DEPENDS_ON, "").split(",") if n),
    )


def _stop_grace(value: Any) -> float:
    """Config.StopTimeout (set from stop_grace_period at create); absent or unreadable means
    the engine's default."""
    try:
        return float(value) if value is not None and int(value) >= 0 else DEFAULT_STOP_GRACE_S
    except (TypeError, ValueError):
        return DEFAULT_STOP_GRACE_S


def image_names(images: Iterable[Mapping[str, Any]]) -> frozenset[str]:
    """Every tag and digest reference of the local images (`<none>` placeholders dropped)."""
    names: set[str] = set()
    for image in images:
        for ref in (image.get("RepoTags") or []) + (image.get("RepoDigests") or []):
            if ref and not ref.startswith("<none>"):
                names.add(ref)
    return frozenset(names)


def labelled_app_ids(objects: Iterable[Mapping[str, Any]], owner: Ownership) -> dict[str, int]:
    """This agent's networks/volumes -> app id, skipping any whose app id is unreadable."""
    result: dict[str, int] = {}
    for obj in objects:
        labels = obj.get("Labels") or {}
        if not owner.owns(labels):
            continue
        try:
            result[str(obj["Name"])] = int(labels[LABEL_APP_ID])
        except (KeyError, ValueError):
            continue
    return result

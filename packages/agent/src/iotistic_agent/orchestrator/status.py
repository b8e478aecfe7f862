"""What each service is doing, derived from the last snapshot, the target and failures."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from .model import (
    AppSpec,
    ContainerInfo,
    EngineSnapshot,
    FailureRecord,
    ServiceKey,
    ServiceSpec,
    current_failure,
    missing_networks,
)

_CONTAINER_STATUS = {
    "created": "Installed",
    "running": "Running",
    "paused": "Paused",
    "restarting": "Restarting",
    "exited": "Stopped",
    "dead": "Dead",
    "removing": "Removing",
}


# The status a service shows once it matches its target state.
SETTLED_STATUS = {"running": "Running", "paused": "Paused", "stopped": "Stopped"}


def is_settled(service: Mapping[str, Any]) -> bool:
    """True when a service's reported status (see ``service_state``) matches its target; a
    job that exited 0 is done (restart "no" or "on-failure")."""
    if service["status"] == "Exited" and service["targetState"] == "running":
        return service.get("exitCode") == 0
    return bool(service["status"] == SETTLED_STATUS.get(service["targetState"]))


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


def applications_state(
    target: Mapping[int, AppSpec],
    snapshot: EngineSnapshot | None,
    failures: Mapping[ServiceKey, FailureRecord],
) -> dict[str, Any]:
    """Per app and service: status, container id, image and failure fields (JSON-ready)."""
    apps: dict[str, Any] = {}
    for app in sorted(target.values(), key=lambda a: a.app_id):
        services = {}
        for spec in app.services:
            container = current_container(spec, snapshot)
            services[spec.service_name] = service_state(
                spec, container, current_failure(spec, failures), snapshot
            )
        apps[str(app.app_id)] = {"appId": app.app_id, "appName": app.app_name, "services": services}
    return apps


def current_container(spec: ServiceSpec, snapshot: EngineSnapshot | None) -> ContainerInfo | None:
    if snapshot is None:
        return None
    candidates = snapshot.containers_of(spec.key)
    current = [c for c in candidates if c.config_hash == spec.config_hash]
    chosen = current or list(candidates)
    return max(chosen, key=lambda c: (c.is_running, c.created_at)) if chosen else None


def service_state(
    spec: ServiceSpec,
    container: ContainerInfo | None,
    record: FailureRecord | None,
    snapshot: EngineSnapshot | None,
) -> dict[str, Any]:
    if record is not None:
        status = record.display_reason
    elif container is None:
        if spec.state == "stopped":
            status = "Stopped"
        elif snapshot is not None and spec.image not in snapshot.images:
            status = "Downloading"
        else:
            status = "Pending"
    elif container.config_hash != spec.config_hash or (
        container.is_running and missing_networks(spec, container)
    ):
        status = "Updating"  # an old configuration, or disconnected from a network of its own
    elif container.status == "exited" and spec.state != "stopped":
        status = "Exited"  # by itself: a finished job (or a crash not yet counted)
    else:
        status = _CONTAINER_STATUS.get(container.status, container.status)
    return {
        "serviceId": spec.service_id,
        "serviceName": spec.service_name,
        "status": status,
        "targetState": spec.state,
        "containerId": container.id if container else None,
        "image": spec.image,
        "restartCount": container.restart_count if container else 0,
        "exitCode": _exit_code(container),
        "error": _error(record),
    }


def _exit_code(container: ContainerInfo | None) -> int | None:
    """The code the container exited with, while it is down."""
    if container is None or container.status not in ("exited", "dead"):
        return None
    return container.exit_code


def _error(record: FailureRecord | None) -> dict[str, Any] | None:
    if record is None:
        return None
    return {
        "type": record.display_reason,
        "message": record.message,
        "retryCount": record.retry_count,
        "lastFailure": iso(record.last_failure_at),
        "nextRetry": None if record.gave_up else iso(record.next_retry_at),
        "gaveUp": record.gave_up,
    }

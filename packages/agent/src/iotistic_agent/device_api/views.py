"""JSON views of services shared by the app and service routes."""

from __future__ import annotations

from typing import Any

from ..orchestrator.model import AppSpec, EngineSnapshot, PortBinding, ServiceSpec, current_failure
from ..orchestrator.status import current_container, iso, service_state
from .context import ApiContext
from .refs import short_ref


def port_text(p: PortBinding) -> str:
    host = f"{p.host_ip}:" if p.host_ip else ""
    host_port = str(p.host_port) if p.host_port is not None else ""
    return f"{host}{host_port}->{p.container_port}/{p.protocol}"


def service_info(
    ctx: ApiContext, app: AppSpec, spec: ServiceSpec, snapshot: EngineSnapshot | None
) -> dict[str, Any]:
    container = current_container(spec, snapshot)
    failure = current_failure(spec, ctx.reconciler.failures)
    overrides = ctx.targets.overrides()
    return {
        **service_state(spec, container, failure, snapshot),
        "appId": app.app_id,
        "appName": app.app_name,
        "ref": short_ref(spec),
        "containerName": container.name if container else None,
        "createdAt": iso(container.created_at) if container and container.created_at else None,
        "startedAt": iso(container.started_at) if container and container.started_at else None,
        "ports": [port_text(p) for p in spec.ports],
        "override": overrides.get(spec.key),
    }


def app_info(ctx: ApiContext, app: AppSpec, snapshot: EngineSnapshot | None) -> dict[str, Any]:
    return {
        "appId": app.app_id,
        "appName": app.app_name,
        "services": [service_info(ctx, app, s, snapshot) for s in app.services],
    }

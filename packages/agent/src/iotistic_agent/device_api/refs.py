"""Resolve the service references users type: container name, `<service>`,
`<service>-<serviceId>` or `<appId>/<service>`."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from ..orchestrator.model import AppSpec, ContainerInfo, EngineSnapshot, ServiceSpec
from ..orchestrator.status import current_container
from .context import api_context
from .errors import ApiError
from .params import is_app_id
from .shared import shared


@dataclass(frozen=True)
class ServiceRef:
    app: AppSpec
    spec: ServiceSpec
    container: ContainerInfo | None
    snapshot: EngineSnapshot  # the one the reference was resolved against

    @property
    def app_id(self) -> int:
        return self.spec.app_id

    @property
    def service_name(self) -> str:
        return self.spec.service_name

    @property
    def container_id(self) -> str | None:
        return self.container.id if self.container else None


def short_ref(spec: ServiceSpec) -> str:
    return f"{spec.service_name}-{spec.service_id}"


async def resolve_ref(request: web.Request, ref: str) -> ServiceRef:
    """Find one service; 404 when nothing matches, 409 when a bare name is ambiguous."""
    snapshot = await shared(request).snapshot()
    target = api_context(request).targets.current_target()
    services = [(app, spec) for app in target.values() for spec in app.services]
    matches = _match(ref, services, snapshot)
    if not matches:
        raise ApiError(404, "not_found", f"no service matches {ref!r} (see `iotctl services list`)")
    if len(matches) > 1:
        names = ", ".join(f"{a.app_id}/{s.service_name}" for a, s in matches)
        raise ApiError(409, "conflict", f"{ref!r} is ambiguous: {names}; use <appId>/<service>")
    app, spec = matches[0]
    return ServiceRef(app, spec, current_container(spec, snapshot), snapshot)


def _match(
    ref: str, services: list[tuple[AppSpec, ServiceSpec]], snapshot: EngineSnapshot
) -> list[tuple[AppSpec, ServiceSpec]]:
    app_part, slash, name_part = ref.partition("/")
    if slash and is_app_id(app_part):
        return [
            (a, s) for a, s in services if a.app_id == int(app_part) and s.service_name == name_part
        ]
    by_container = {
        c.key
        for c in snapshot.containers
        if c.name == ref or (len(ref) >= 12 and c.id.startswith(ref))
    }
    for finder in (
        lambda s: s.key in by_container,
        lambda s: s.service_name == ref,
        lambda s: short_ref(s) == ref,
    ):
        found = [(a, s) for a, s in services if finder(s)]
        if found:
            return found
    return []

"""The target state: which apps and services a device must run, and how."""

from __future__ import annotations

import hashlib
import json
import re
from typing import Annotated, Any, Final, Literal

from pydantic import BaseModel, BeforeValidator, Field, model_validator

from ._located import Loc, Problem, raise_problems
from .dependencies import find_cycle
from .fields import ImageRef, ServiceName, network_mode_service
from .images import same_image
from .labels import UPDATE_STRATEGY_LABEL
from .service_config import (
    STRICT_MODEL,
    Healthcheck,
    NetworkAttachment,
    Resources,
    ResourceValues,
    ServiceConfig,
)
from .update_strategy import DEFAULT_UPDATE_STRATEGY, UpdateStrategy, is_update_strategy

__all__ = [
    "App",
    "Healthcheck",
    "NetworkAttachment",
    "ResourceValues",
    "Resources",
    "Service",
    "ServiceConfig",
    "ServiceState",
    "TargetState",
    "UpdateStrategy",
]

ServiceState = Literal["running", "stopped", "paused"]

MAX_ID: Final = 2**63 - 1
_DIGITS_RE: Final = re.compile(r"[0-9]{1,19}")


def _coerce_id(value: Any) -> Any:
    # The cloud has sent ids both as numbers and as digit strings ("serviceId": "1").
    if isinstance(value, str):
        if _DIGITS_RE.fullmatch(value) is None:
            raise ValueError(f"id {value!r} must be an integer or a string of digits")
        return int(value)
    return value


EntityId = Annotated[int, BeforeValidator(_coerce_id), Field(ge=0, le=MAX_ID)]


class Service(BaseModel):
    """One container of an app."""

    model_config = STRICT_MODEL

    serviceId: EntityId
    serviceName: ServiceName
    imageName: ImageRef
    state: ServiceState = "running"
    updateStrategy: UpdateStrategy | None = None
    config: ServiceConfig = Field(default_factory=ServiceConfig)

    @model_validator(mode="after")
    def _image_matches(self) -> Service:
        image = self.config.image
        # "nginx" and "docker.io/library/nginx:latest" name the same image: not a conflict.
        if image is not None and not same_image(image, self.imageName):
            message = f"config.image {image!r} differs from imageName {self.imageName!r}"
            raise_problems("Service", [Problem(("config", "image"), message, image)])
        return self

    @property
    def image(self) -> str:
        return self.imageName

    @property
    def update_strategy(self) -> UpdateStrategy:
        """The field, else the ``io.iotistic.update-strategy`` label, else the default."""
        if self.updateStrategy is not None:
            return self.updateStrategy
        label = self.config.labels.get(UPDATE_STRATEGY_LABEL)
        # The label value was checked when the config was validated.
        if is_update_strategy(label):
            return label
        return DEFAULT_UPDATE_STRATEGY


class App(BaseModel):
    """A group of services deployed together; dependencies stay inside one app."""

    model_config = STRICT_MODEL

    appId: EntityId
    appName: str = Field(min_length=1)
    services: list[Service] = Field(default_factory=list)

    @model_validator(mode="after")
    def _services_consistent(self) -> App:
        problems = _identity_problems(self.services)
        problems += _reference_problems(self.services)
        if not problems:
            problems += _cycle_problems(self.services)
        raise_problems("App", problems)
        return self

    def service(self, name: str) -> Service | None:
        return next((s for s in self.services if s.serviceName == name), None)


def _identity_problems(services: list[Service]) -> list[Problem]:
    problems: list[Problem] = []
    names: dict[str, int] = {}
    ids: dict[int, int] = {}
    for index, service in enumerate(services):
        name, service_id = service.serviceName, service.serviceId
        if name in names:
            message = f"duplicate serviceName {name!r} (also services[{names[name]}])"
            problems.append(Problem(("services", index, "serviceName"), message, name))
        if service_id in ids:
            message = f"duplicate serviceId {service_id} (also services[{ids[service_id]}])"
            problems.append(Problem(("services", index, "serviceId"), message, service_id))
        names.setdefault(name, index)
        ids.setdefault(service_id, index)
    return problems


def _reference_problems(services: list[Service]) -> list[Problem]:
    names = {service.serviceName for service in services}
    problems: list[Problem] = []
    for index, service in enumerate(services):
        for position, dependency in enumerate(service.config.depends_on):
            loc: Loc = ("services", index, "config", "depends_on", position)
            if dependency == service.serviceName:
                message = f"service {dependency!r} depends on itself"
                problems.append(Problem(loc, message, dependency))
            elif dependency not in names:
                message = f"depends on {dependency!r}, which is not a service of this app"
                problems.append(Problem(loc, message, dependency))
        target = network_mode_service(service.config.network_mode)
        if target is not None and (target == service.serviceName or target not in names):
            message = f"network_mode names {target!r}, which is not another service of this app"
            loc = ("services", index, "config", "network_mode")
            problems.append(Problem(loc, message, service.config.network_mode))
    return problems


def _cycle_problems(services: list[Service]) -> list[Problem]:
    graph: dict[str, list[str]] = {}
    for service in services:
        # Sharing another service's network namespace needs it running first: also an edge.
        shared = network_mode_service(service.config.network_mode)
        graph[service.serviceName] = [*service.config.depends_on, *([shared] if shared else [])]
    cycle = find_cycle(graph)
    if cycle is None:
        return []
    index = next(i for i, s in enumerate(services) if s.serviceName == cycle[0])
    message = f"dependency cycle: {' -> '.join(cycle)}"
    return [Problem(("services", index, "config", "depends_on"), message, cycle)]


class TargetState(BaseModel):
    """Everything a device must run, keyed by the decimal string of each ``appId``."""

    model_config = STRICT_MODEL

    apps: dict[str, App] = Field(default_factory=dict)
    config: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _keys_match_app_ids(self) -> TargetState:
        problems = [
            Problem(("apps", key), f"key {key!r} must equal its app's appId ({app.appId})", key)
            for key, app in self.apps.items()
            if key != str(app.appId)
        ]
        raise_problems("TargetState", problems)
        return self

    def canonical_json(self) -> str:
        """Compact JSON with sorted keys: equal targets give equal text whatever the key order."""
        data = self.model_dump(mode="json", by_alias=True, exclude_none=False)
        return json.dumps(data, sort_keys=True, separators=(",", ":"))

    def state_hash(self) -> str:
        return hashlib.sha256(self.canonical_json().encode("utf-8")).hexdigest()

"""Does a target stay within the device policy? A pure function of the target, the policy
and where its bind sources really lead on the host (symlinks followed, see `paths`).

Each refusal names the field (the dotted path target-state errors use) and the setting that
would allow it. Names are checked here too: an `appName` ends up in labels, logs and the
cloud's records, so it must not be able to act as a path or carry control characters.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any, Final

from iotistic_contracts import App, TargetState
from iotistic_contracts.service_config import ServiceConfig

from . import model
from .model import DevicePolicy, capability_name

MAX_APP_NAME: Final = 255  # what a state report may carry (contracts.sync.AppReport)
MAX_REFUSALS_IN_MESSAGE: Final = 5


@dataclass(frozen=True)
class Refusal:
    field: str
    message: str
    setting: str | None  # the policy setting that would allow it; None for a bad name

    def text(self) -> str:
        rule = f" (device policy: {self.setting})" if self.setting else ""
        return f"{self.field}: {self.message}{rule}"

    def as_json(self) -> dict[str, Any]:
        return {"field": self.field, "message": self.message, "setting": self.setting}


class TargetRefused(ValueError):
    """A target the device policy does not allow; nothing was stored."""

    def __init__(self, refusals: list[Refusal]) -> None:
        shown = "; ".join(r.text() for r in refusals[:MAX_REFUSALS_IN_MESSAGE])
        hidden = len(refusals) - MAX_REFUSALS_IN_MESSAGE
        more = f" (and {hidden} more)" if hidden > 0 else ""
        super().__init__(f"target refused by the device policy: {shown}{more}")
        self.refusals = refusals


def check_target(
    target: TargetState, policy: DevicePolicy, real_paths: Mapping[str, str] | None = None
) -> list[Refusal]:
    """Every way `target` breaks `policy`, in target order; empty when it may be applied.
    `real_paths`: a bind source -> the path it leads to (when it differs)."""
    real = real_paths or {}
    refusals = list(_size(target, policy))
    for key, app in target.apps.items():
        refusals += _app_name(f"apps.{key}", app)
        if len(app.services) > policy.max_services_per_app:
            refusals.append(
                Refusal(
                    f"apps.{key}.services",
                    f"{len(app.services)} services, more than the {policy.max_services_per_app} "
                    "an app may have",
                    model.MAX_SERVICES_PER_APP,
                )
            )
        for index, service in enumerate(app.services):
            where = f"apps.{key}.services[{index}].config"
            refusals += _host_access(where, service.config, policy, real)
    return refusals


def _size(target: TargetState, policy: DevicePolicy) -> Iterator[Refusal]:
    if len(target.apps) > policy.max_apps:
        message = f"{len(target.apps)} apps, more than the {policy.max_apps} a device may run"
        yield Refusal("apps", message, model.MAX_APPS)
    total = sum(len(app.services) for app in target.apps.values())
    if total > policy.max_services:
        message = f"{total} services in all, more than the {policy.max_services} a device may run"
        yield Refusal("apps", message, model.MAX_SERVICES)


def _app_name(where: str, app: App) -> Iterator[Refusal]:
    name = app.appName
    problem = None
    if len(name) > MAX_APP_NAME:
        problem = f"longer than {MAX_APP_NAME} characters"
    elif "/" in name or "\\" in name:
        problem = "contains a path separator ('/' or '\\')"
    elif not name.isprintable():
        problem = "contains control or other non-printable characters"
    elif name.strip() in (".", ".."):
        problem = "is '.' or '..'"
    if problem is not None:
        yield Refusal(f"{where}.appName", f"app name {name[:40]!r} {problem}", None)


def _host_access(
    where: str, config: ServiceConfig, policy: DevicePolicy, real: Mapping[str, str]
) -> Iterator[Refusal]:
    if config.privileged and not policy.allow_privileged:
        yield Refusal(
            f"{where}.privileged",
            "privileged mode gives the container the whole device",
            model.PRIVILEGED,
        )
    for index, capability in enumerate(config.cap_add):
        if not _capability_allowed(capability_name(capability), policy.allowed_capabilities):
            yield Refusal(
                f"{where}.cap_add[{index}]",
                f"capability {capability!r} is not allowed",
                model.CAPABILITIES,
            )
    for index, device in enumerate(config.devices):
        host = posixpath.normpath(device.split(":")[0])
        if not any(fnmatchcase(host, pattern) for pattern in policy.allowed_devices):
            yield Refusal(
                f"{where}.devices[{index}]", f"device {host} is not allowed", model.DEVICES
            )
    mode = config.network_mode or ""
    if (mode == "host" or mode.startswith("container:")) and not policy.allow_host_network:
        reason = (
            "the host's network" if mode == "host" else "the network of a container outside the app"
        )
        yield Refusal(f"{where}.network_mode", f"{mode!r} joins {reason}", model.HOST_NETWORK)
    for index, mount in enumerate(config.volume_mounts):
        if mount.kind == "bind" and mount.source is not None:
            refusal = _bind(mount.source, real.get(mount.source), policy)
            if refusal is not None:
                message, setting = refusal
                yield Refusal(f"{where}.volumes[{index}]", message, setting)


def _capability_allowed(name: str, allowed: frozenset[str]) -> bool:
    return "ALL" in allowed or (name != "ALL" and name in allowed)


def _bind(source: str, real: str | None, policy: DevicePolicy) -> tuple[str, str] | None:
    """Why binding host path `source` (leading to `real`) is refused, and the setting."""
    paths = {posixpath.normpath(source), posixpath.normpath(real or source)}
    leads = f" (which leads to {real})" if real and real != source else ""
    if paths & set(policy.engine_sockets):
        if policy.allow_engine_socket:
            return None  # the socket itself, allowed as such wherever it is
        return (
            f"host path {source}{leads} is the container engine's socket: control of the device",
            model.ENGINE_SOCKET,
        )
    if not all(any(_within(p, prefix) for prefix in policy.allowed_bind_prefixes) for p in paths):
        allowed = ", ".join(policy.allowed_bind_prefixes) or "none"
        return (
            f"host path {source}{leads} is not under an allowed prefix (allowed: {allowed})",
            model.BIND_PREFIXES,
        )
    exposed = [s for s in policy.engine_sockets if any(_within(s, p) for p in paths)]
    if exposed and not policy.allow_engine_socket:
        # Even where the policy allows the folder: the socket inside it is the device.
        return (
            f"host path {source}{leads} holds the container engine's socket {exposed[0]}",
            model.ENGINE_SOCKET,
        )
    return None


def _within(path: str, prefix: str) -> bool:
    """`path` is `prefix` or below it, by whole components (`/data2` is not in `/data`)."""
    return path == prefix or path.startswith(prefix.rstrip("/") + "/")

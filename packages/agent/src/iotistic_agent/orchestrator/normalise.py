"""Target state (wire models) -> normalised specs the planner compares.

Normalisation makes equal what means the same: set-like lists are sorted and de-duplicated,
defaults are filled in, names are scoped to the app. The config hash covers only the fields
that need a new container; restart policy and resource limits change in place.
"""

from __future__ import annotations

import shlex
from dataclasses import replace

from iotistic_contracts import (
    App,
    Service,
    TargetState,
    parse_duration,
    parse_port,
    parse_volume,
)

from .model import (
    DEFAULT_STOP_GRACE_S,
    LABEL_HANDOVER_TIMEOUT,
    AppSpec,
    Healthcheck,
    Mount,
    PortBinding,
    ServiceSpec,
    config_hash,
)

DEFAULT_NETWORK = "default"
DEFAULT_RESTART = "always"
DEFAULT_HANDOVER_TIMEOUT_S = 60.0


def normalise_target(target: TargetState) -> dict[int, AppSpec]:
    return {app.appId: normalise_app(app) for app in target.apps.values()}


def normalise_app(app: App) -> AppSpec:
    services = tuple(normalise_service(app, svc) for svc in app.services)
    networks = sorted({name for s in services for name in s.network_names})
    volumes = sorted({name for s in services for name in s.volume_names})
    return AppSpec(app.appId, app.appName, services, tuple(networks), tuple(volumes))


def scoped_name(app_id: int, name: str) -> str:
    """Engine name of an app's network or volume: apps never share them by accident."""
    return f"{app_id}_{name}"


def normalise_image(ref: str) -> str:
    """`busybox` and `busybox:latest` are the same image; a digest reference stays as is."""
    if "@" in ref:
        return ref
    last = ref.rsplit("/", 1)[-1]
    return ref if ":" in last else f"{ref}:latest"


def normalise_service(app: App, svc: Service) -> ServiceSpec:
    cfg = svc.config
    labels = dict(cfg.labels)
    handover = labels.get(LABEL_HANDOVER_TIMEOUT)
    limits = cfg.resources.limits if cfg.resources else None
    requests = cfg.resources.requests if cfg.resources else None
    spec = ServiceSpec(
        app_id=app.appId,
        app_name=app.appName,
        service_id=svc.serviceId,
        service_name=svc.serviceName,
        image=normalise_image(svc.image),
        state=svc.state,
        strategy=svc.update_strategy,
        handover_timeout_s=parse_duration(handover) if handover else DEFAULT_HANDOVER_TIMEOUT_S,
        command=_argv(cfg.command),
        entrypoint=_argv(cfg.entrypoint),
        environment=tuple(sorted(cfg.environment.items())),
        ports=_ports(cfg.ports),
        mounts=_mounts(app.appId, cfg.volumes),
        networks=_networks(app.appId, svc),
        network_mode=cfg.network_mode,
        labels=tuple(sorted(labels.items())),
        user=cfg.user,
        working_dir=cfg.working_dir,
        privileged=cfg.privileged,
        devices=tuple(sorted(set(cfg.devices))),
        cap_add=tuple(sorted({c.upper() for c in cfg.cap_add})),
        cap_drop=tuple(sorted({c.upper() for c in cfg.cap_drop})),
        tmpfs=_tmpfs(cfg.tmpfs),
        healthcheck=_healthcheck(svc),
        hostname=cfg.hostname,
        stop_signal=cfg.stop_signal,
        stop_grace_s=(
            parse_duration(cfg.stop_grace_period)
            if cfg.stop_grace_period is not None
            else DEFAULT_STOP_GRACE_S
        ),
        depends_on=tuple(sorted(set(cfg.depends_on))),
        restart=cfg.restart or DEFAULT_RESTART,
        nano_cpus=limits.nano_cpus if limits else None,
        memory_bytes=limits.memory_bytes if limits else None,
        memory_reservation_bytes=requests.memory_bytes if requests else None,
    )
    return _with_hash(spec)


def _with_hash(spec: ServiceSpec) -> ServiceSpec:
    return replace(spec, config_hash=config_hash(spec))


def _argv(value: str | list[str] | None) -> tuple[str, ...] | None:
    if value is None:
        return None
    # Compose splits a string command like a shell would, without running a shell.
    return tuple(shlex.split(value)) if isinstance(value, str) else tuple(value)


def _ports(specs: list[str | int]) -> tuple[PortBinding, ...]:
    bindings = {
        PortBinding(
            container_port=p.container_port,
            protocol=p.protocol,
            # Docker reports "all interfaces" as an empty host IP: treat 0.0.0.0 the same.
            host_ip="" if p.host_ip in (None, "0.0.0.0") else p.host_ip,
            host_port=p.host_port,
        )
        for spec in specs
        for p in parse_port(spec)
    }
    return tuple(
        sorted(bindings, key=lambda b: (b.container_port, b.protocol, b.host_ip, b.host_port or 0))
    )


def _mounts(app_id: int, specs: list[str]) -> tuple[Mount, ...]:
    mounts: dict[str, Mount] = {}
    for spec in specs:
        v = parse_volume(spec)
        if v.kind == "volume":
            assert v.source is not None
            source = scoped_name(app_id, v.source)
        else:
            source = v.source or ""
        mounts[v.target] = Mount(v.kind, source, v.target, v.read_only)
    return tuple(mounts[t] for t in sorted(mounts))


def _networks(app_id: int, svc: Service) -> tuple[tuple[str, tuple[str, ...]], ...]:
    cfg = svc.config
    if cfg.network_mode is not None:
        return ()
    aliases = cfg.network_aliases
    names = list(cfg.networks) if cfg.networks else [DEFAULT_NETWORK]
    return tuple(
        sorted((scoped_name(app_id, n), tuple(sorted(set(aliases.get(n, ()))))) for n in set(names))
    )


def _tmpfs(value: str | list[str]) -> tuple[tuple[str, str], ...]:
    items = [value] if isinstance(value, str) else value
    pairs = {}
    for item in items:
        path, _, opts = item.partition(":")
        pairs[path] = opts
    return tuple(sorted(pairs.items()))


def _seconds_to_ns(value: str | int | float | None) -> int | None:
    return None if value is None else int(parse_duration(value) * 1_000_000_000)


def _healthcheck(svc: Service) -> Healthcheck | None:
    hc = svc.config.healthcheck
    if hc is None:
        return None
    if hc.disable:
        return Healthcheck(("NONE",), None, None, None, None)
    test = ("CMD-SHELL", hc.test) if isinstance(hc.test, str) else tuple(hc.test)
    return Healthcheck(
        test=test,
        interval_ns=_seconds_to_ns(hc.interval),
        timeout_ns=_seconds_to_ns(hc.timeout),
        start_period_ns=_seconds_to_ns(hc.start_period),
        retries=hc.retries,
    )

"""The pure planner: (current, target, context) -> the next batch of steps.

It never touches the engine, the clock or the database. The reconciler re-reads reality,
plans, executes the batch and repeats until the planner returns nothing. Each batch only
contains steps whose preconditions hold *now*; anything that depends on the outcome of
another step waits for a later pass (level-triggered, like a Kubernetes controller).

An empty plan means settled: every service is converged or has given up after repeated
failures. A `Noop` means "not there yet, but nothing to do now" (waiting on a backoff,
a dependency or a hand-over).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from .model import (
    AppSpec,
    ContainerInfo,
    EngineSnapshot,
    FailureRecord,
    PlanContext,
    ServiceKey,
    ServiceSpec,
    current_failure,
    finished_job,
    missing_networks,
)
from .steps import (
    ConnectNetwork,
    CreateNetwork,
    CreateVolume,
    DisconnectNetwork,
    FetchImage,
    Kill,
    Noop,
    Pause,
    ReleaseLock,
    RemoveImage,
    RemoveNetwork,
    RemoveVolume,
    Start,
    Step,
    Stop,
    TakeLock,
    Unpause,
    UpdateMetadata,
)
from .stop_order import order_stops

# Steps that interrupt a running service: an app's update lock is taken before any of them.
_DISRUPTIVE = (Kill, Stop)
_PULL_FAILURES = ("ImagePullBackOff", "ErrImagePull")


def plan(current: EngineSnapshot, target: Mapping[int, AppSpec], ctx: PlanContext) -> list[Step]:
    steps: list[Step] = []
    steps += _remove_unwanted_containers(current, target)
    all_images = frozenset(img for app in target.values() for img in app.images)
    for app in sorted(target.values(), key=lambda a: a.app_id):
        steps += _plan_app(app, current, ctx, all_images)
    steps += _remove_unused_networks_and_volumes(current, target)
    return order_stops(steps, current, target)


def _remove_unwanted_containers(
    current: EngineSnapshot, target: Mapping[int, AppSpec]
) -> list[Step]:
    steps: list[Step] = []
    for c in current.containers:
        app = target.get(c.app_id)
        if app is None or app.service(c.service_name) is None:
            # The target no longer says how long it may take: the container does.
            steps.append(Kill(c.id, c.key, c.stop_grace_s))
    return steps


def _remove_unused_networks_and_volumes(
    current: EngineSnapshot, target: Mapping[int, AppSpec]
) -> list[Step]:
    wanted_networks = {n for app in target.values() for n in app.networks}
    apps_with_containers = {c.app_id for c in current.containers}
    attached = {n for c in current.containers for n in c.networks}
    steps: list[Step] = []
    for name in sorted(current.networks):
        # The engine refuses to remove a network that still has endpoints: wait for them.
        if name not in wanted_networks and name not in attached:
            steps.append(RemoveNetwork(name))
    for name, app_id in sorted(current.volumes.items()):
        # Data belongs to the app: volumes go only when the app itself left the target.
        if app_id not in target and app_id not in apps_with_containers:
            steps.append(RemoveVolume(name))
    return steps


@dataclass
class _AppPlan:
    """Steps of one app, collected per kind so that the lock and fetch rules apply to all."""

    app: AppSpec
    current: EngineSnapshot
    ctx: PlanContext
    target_images: frozenset[str]
    steps: list[Step] = field(default_factory=list)
    fetch_for: dict[str, list[ServiceKey]] = field(default_factory=dict)

    def failure(self, spec: ServiceSpec) -> FailureRecord | None:
        return current_failure(spec, self.ctx.failures)

    def needs_new_container(self, spec: ServiceSpec) -> bool:
        return spec.state != "stopped" and not any(
            _is_current(spec, c) for c in self.current.containers_of(spec.key)
        )

    def release_ready(self) -> bool:
        """All images the new release needs are present, except those that keep failing to
        pull: one broken image must not hold back the rest of the app."""
        for spec in self.app.services:
            if not self.needs_new_container(spec) or spec.image in self.current.images:
                continue
            failure = self.failure(spec)
            if failure is None or failure.reason not in _PULL_FAILURES:
                return False
        return True


def _plan_app(
    app: AppSpec, current: EngineSnapshot, ctx: PlanContext, target_images: frozenset[str]
) -> list[Step]:
    ap = _AppPlan(app, current, ctx, target_images)
    infra_ready = _plan_infrastructure(ap)
    release_ready = ap.release_ready()
    for spec in app.services:
        _plan_service(ap, spec, infra_ready, release_ready)
    for image, keys in sorted(ap.fetch_for.items()):
        ap.steps.append(FetchImage(image, tuple(keys)))
    return _apply_lock(app.app_id, ap.steps, ctx)


def _plan_infrastructure(ap: _AppPlan) -> bool:
    """Create missing networks and volumes; services wait until they exist."""
    ready = True
    for net in ap.app.networks:
        if net not in ap.current.networks:
            ap.steps.append(CreateNetwork(net, ap.app.app_id))
            ready = False
    for vol in ap.app.volumes:
        if vol not in ap.current.volumes:
            ap.steps.append(CreateVolume(vol, ap.app.app_id))
            ready = False
    return ready


def _plan_service(ap: _AppPlan, spec: ServiceSpec, infra_ready: bool, release_ready: bool) -> None:
    containers = ap.current.containers_of(spec.key)
    matching = [c for c in containers if _is_current(spec, c)]
    stale = [c for c in containers if not _is_current(spec, c)]
    failure = ap.failure(spec)

    if len(matching) > 1:
        # Duplicates (e.g. a foreign copy): keep the best one, remove the rest.
        keep = _best(matching)
        ap.steps += [Kill(c.id, c.key, c.stop_grace_s) for c in matching if c.id != keep.id]
        matching = [keep]

    if matching:
        ap.steps += _retire_stale_after_handover(spec, matching[0], stale, ap.ctx)
        ap.steps += _converge_existing(spec, matching[0], failure, ap.ctx)
        ap.steps += _network_drift(spec, matching[0], ap.current)
        return
    _plan_new_container(ap, spec, stale, failure, infra_ready, release_ready)


def _is_current(spec: ServiceSpec, c: ContainerInfo) -> bool:
    """Same config, and no resource limit that only a new container can drop (the engine
    cannot clear a limit in place: zero means "unchanged" to `docker update`)."""
    if c.config_hash != spec.config_hash:
        return False
    pairs = (
        (spec.nano_cpus, c.nano_cpus),
        (spec.memory_bytes, c.memory_bytes),
        (spec.memory_reservation_bytes, c.memory_reservation_bytes),
    )
    return not any(wanted is None and actual is not None for wanted, actual in pairs)


def _best(containers: Iterable[ContainerInfo]) -> ContainerInfo:
    return max(containers, key=lambda c: (c.is_running, c.created_at, c.id))


def _retire_stale_after_handover(
    spec: ServiceSpec, new: ContainerInfo, stale: list[ContainerInfo], ctx: PlanContext
) -> list[Step]:
    if not stale:
        return []
    if finished_job(spec, new, ctx.agent_stopped):
        return [Kill(c.id, c.key, spec.stop_grace_s) for c in stale]  # it ran, and is done
    if new.status not in ("running", "paused"):
        return [Noop("hand-over: waiting for the new container to run", spec.key)]
    # A paused one ran before it was paused (the old container's kill may have waited on a
    # dependant while the new one reached its target state).
    ready = (
        new.status == "paused"
        or new.health in (None, "healthy")
        or ctx.now - new.started_at >= spec.handover_timeout_s
    )
    if not ready:
        return [Noop("hand-over: waiting for the new container to be healthy", spec.key)]
    return [Kill(c.id, c.key, spec.stop_grace_s) for c in stale]


def _converge_existing(
    spec: ServiceSpec, c: ContainerInfo, failure: FailureRecord | None, ctx: PlanContext
) -> list[Step]:
    steps: list[Step] = []
    if _metadata_differs(spec, c):
        steps.append(UpdateMetadata(c.id, spec))
    if spec.state == "stopped":
        if c.status in ("running", "restarting", "paused"):
            steps.append(Stop(c.id, c.key, spec.stop_grace_s))
        return steps
    if failure is not None and failure.gave_up:
        # Stays failed until the target changes or someone restarts it explicitly.
        if c.status in ("running", "restarting"):
            steps.append(Stop(c.id, c.key, spec.stop_grace_s))
        return steps
    if finished_job(spec, c, ctx.agent_stopped):
        return steps  # restart "no"/"on-failure" and exit 0: done, not started again
    if c.status in ("created", "exited", "dead"):
        if failure is not None and failure.next_retry_at > ctx.now:
            steps.append(Noop(failure.reason, spec.key, failure.next_retry_at))
        else:
            steps.append(Start(spec))
        return steps
    if spec.state == "running" and c.status == "paused":
        steps.append(Unpause(c.id, c.key))
    elif spec.state == "paused" and c.status == "running":
        steps.append(Pause(c.id, c.key))
    elif c.status == "removing":
        steps.append(Noop("container is being removed", spec.key))
    return steps


def _network_drift(spec: ServiceSpec, c: ContainerInfo, current: EngineSnapshot) -> list[Step]:
    """A container disconnected by hand from its networks joins them again, and leaves the
    agent's other networks it was connected to. A stopped one needs nothing: starting it
    joins them (networks that do not exist yet are created first)."""
    if c.status not in ("running", "paused") or spec.network_mode is not None:
        return []
    steps: list[Step] = [
        ConnectNetwork(c.id, spec, n) for n in missing_networks(spec, c) if n in current.networks
    ]
    extra = sorted(set(c.networks) - set(spec.network_names))
    steps += [DisconnectNetwork(c.id, c.key, n) for n in extra if n in current.networks]
    return steps


def _metadata_differs(spec: ServiceSpec, c: ContainerInfo) -> bool:
    return (
        spec.restart != c.restart
        or spec.nano_cpus != c.nano_cpus
        or spec.memory_bytes != c.memory_bytes
        or spec.memory_reservation_bytes != c.memory_reservation_bytes
    )


def _plan_new_container(
    ap: _AppPlan,
    spec: ServiceSpec,
    stale: list[ContainerInfo],
    failure: FailureRecord | None,
    infra_ready: bool,
    release_ready: bool,
) -> None:
    strategy = spec.strategy
    if strategy == "hand-over" and spec.ports:
        # Two containers cannot publish the same host port: hand-over cannot apply.
        strategy = "download-then-kill"
    if strategy == "hand-over" and any(c.name == spec.container_name for c in stale):
        # The old container already has the new one's name (same config hash, stale only for
        # a resource limit the engine cannot clear in place): names are unique, so a start
        # would just find the old container again. It has to go first.
        strategy = "download-then-kill"
    if spec.state == "stopped":
        # Nothing to run: retire the old container and do not create a new one.
        ap.steps += [Kill(c.id, c.key, spec.stop_grace_s) for c in stale]
        return
    if failure is not None and failure.gave_up:
        return
    waiting = failure is not None and failure.next_retry_at > ap.ctx.now
    if strategy in ("kill-then-download", "delete-then-download") and stale:
        ap.steps += [Kill(c.id, c.key, spec.stop_grace_s) for c in stale]
        if strategy == "delete-then-download":
            ap.steps += _remove_old_images(ap, spec, stale)
        return
    if spec.image not in ap.current.images:
        if waiting:
            assert failure is not None
            ap.steps.append(Noop(failure.reason, spec.key, failure.next_retry_at))
        else:
            ap.fetch_for.setdefault(spec.image, []).append(spec.key)
        return
    if not release_ready:
        ap.steps.append(Noop("waiting for the app's other images", spec.key))
        return
    if strategy == "download-then-kill" and stale:
        ap.steps += [Kill(c.id, c.key, spec.stop_grace_s) for c in stale]
        return
    if waiting:
        assert failure is not None
        ap.steps.append(Noop(failure.reason, spec.key, failure.next_retry_at))
        return
    if not infra_ready:
        return
    blocked_by = [d for d in spec.depends_on if not _dependency_running(ap, d)]
    if blocked_by:
        ap.steps.append(Noop(f"waiting for {', '.join(blocked_by)}", spec.key))
        return
    ap.steps.append(Start(spec))


def _dependency_running(ap: _AppPlan, name: str) -> bool:
    """depends_on orders starts: a dependency runs, or is a job that finished (an init job).
    One that is meant to stay down (stopped, or given up after repeated failures) does not
    hold its dependents back forever."""
    dep = ap.app.service(name)
    if dep is None or dep.state == "stopped":
        return True
    failure = ap.failure(dep)
    if failure is not None and failure.gave_up:
        return True
    return any(
        c.config_hash == dep.config_hash
        and (c.status in ("running", "paused") or finished_job(dep, c, ap.ctx.agent_stopped))
        for c in ap.current.containers_of(dep.key)
    )


def _remove_old_images(ap: _AppPlan, spec: ServiceSpec, stale: list[ContainerInfo]) -> list[Step]:
    stale_ids = {c.id for c in stale}
    still_used = {c.image for c in ap.current.containers if c.id not in stale_ids}
    still_used |= ap.target_images
    old = {c.image for c in stale} - still_used
    return [RemoveImage(img) for img in sorted(old) if img in ap.current.images]


def _apply_lock(app_id: int, steps: list[Step], ctx: PlanContext) -> list[Step]:
    """Interrupting an app's services needs its update lock; a settled app releases it."""
    disruptive = any(isinstance(s, _DISRUPTIVE) for s in steps)
    if disruptive and app_id not in ctx.locks:
        return [TakeLock(app_id)]
    if app_id in ctx.locks and all(isinstance(s, Noop) for s in steps):
        return [*steps, ReleaseLock(app_id)]
    return steps

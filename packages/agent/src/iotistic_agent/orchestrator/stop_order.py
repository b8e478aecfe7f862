"""The order in which one batch stops containers: dependants before their dependencies.

The reconciler runs the stops and kills of a batch concurrently, so that removing an app
takes about one grace period instead of one per service. `depends_on` still orders them the
way docker compose does (docs/agent.md, "How changes are applied"): a container waits while a
container of a service that depends on it is being stopped in the same batch, and goes in a
later pass, once that one is down. Pure: the planner calls it on every plan.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from .model import AppSpec, ContainerInfo, EngineSnapshot
from .steps import Kill, Noop, RemoveImage, Step, Stop


def order_stops(
    steps: Sequence[Step], current: EngineSnapshot, target: Mapping[int, AppSpec]
) -> list[Step]:
    """The steps, with each stop or kill of a container held back (as a Noop) while a
    dependant of its service is stopped or killed by the same batch."""
    # Only containers that are up: removing one that already exited has nothing to order.
    up = {c.id: c for c in current.containers if c.status in ("running", "restarting", "paused")}
    stopping = [
        up[s.container_id] for s in steps if isinstance(s, Stop | Kill) and s.container_id in up
    ]
    held: dict[str, str] = {}
    for app_id in sorted({c.app_id for c in stopping}):
        in_app = [c for c in stopping if c.app_id == app_id]
        waits = {
            c.id: sorted(
                {
                    d.service_name
                    for d in in_app
                    if d.service_name != c.service_name
                    and c.service_name in dependencies(d, target)
                }
            )
            for c in in_app
        }
        blocked = {cid: names for cid, names in waits.items() if names}
        # Every stop waiting on another means a cycle (an old container's dependencies and
        # the new target's disagree): stop them all rather than none.
        if len(blocked) < len(in_app):
            held.update({cid: ", ".join(names) for cid, names in blocked.items()})
    # An image the planner deletes once its old containers are gone (delete-then-download)
    # waits for a held one too.
    still_used = {up[cid].image for cid in held}
    return [
        _hold(s, held) for s in steps if not (isinstance(s, RemoveImage) and s.image in still_used)
    ]


def dependencies(c: ContainerInfo, target: Mapping[int, AppSpec]) -> tuple[str, ...]:
    """What the container's service depends on: the target says, for a service still in it
    (depends_on changes in place); for one that left, the label set at creation."""
    app = target.get(c.app_id)
    spec = app.service(c.service_name) if app is not None else None
    return spec.depends_on if spec is not None else c.depends_on


def _hold(step: Step, held: Mapping[str, str]) -> Step:
    if isinstance(step, Stop | Kill) and step.container_id in held:
        return Noop(f"stops after {held[step.container_id]}", step.service)
    return step

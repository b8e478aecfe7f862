"""The engine's own record of what happened to containers (`docker events`), with its
timestamps: signals and exits are timed by the daemon, not by a busy test process."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

from tests.integration.dockerkit import docker


@dataclass(frozen=True)
class ContainerEvent:
    container_id: str
    name: str  # the container's name
    action: str  # "kill", "die", "destroy", ...
    signal: str | None  # for "kill": "15" (SIGTERM), "9" (SIGKILL)
    at: float  # the daemon's time, seconds


def container_events(since: float) -> list[ContainerEvent]:
    """Every container event from `since` until now, oldest first."""
    proc = docker(
        "events",
        "--since",
        f"{since:.3f}",
        "--until",
        f"{time.time():.3f}",
        "--filter",
        "type=container",
        "--format",
        "{{json .}}",
    )
    events = []
    for line in proc.stdout.splitlines():
        raw = json.loads(line)
        attributes = raw.get("Actor", {}).get("Attributes", {})
        events.append(
            ContainerEvent(
                container_id=raw["id"],
                name=attributes.get("name", ""),
                action=raw["Action"],
                signal=attributes.get("signal"),
                at=raw["timeNano"] / 1e9,
            )
        )
    return events


def first(
    events: list[ContainerEvent], container_id: str, action: str, signal: str | None = None
) -> float:
    """When the container first had that event (AssertionError naming what was seen if never)."""
    for e in events:
        if (
            e.container_id == container_id
            and e.action == action
            and (signal is None or e.signal == signal)
        ):
            return e.at
    seen = [(e.action, e.signal) for e in events if e.container_id == container_id]
    raise AssertionError(f"no {action} {signal or ''} event for {container_id[:12]}; saw {seen}")

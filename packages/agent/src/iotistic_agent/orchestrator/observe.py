"""Crash bookkeeping, as a pure function of what the engine shows.

`observe(previous, failures, snapshot, target, now)` compares the snapshot with what earlier
snapshots showed and returns the new observations and the failure events: a crash (the
container exited, or the engine restarted it), a recovery (up for `STABLE_AFTER_S`), a job
that finished, a target that moved on. The reconciler stores the events and logs them; the
planner reads the observations (through `PlanContext`) to tell a finished job from a
container the agent stopped itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from .backoff import STABLE_AFTER_S, record_failure
from .model import (
    AppSpec,
    ContainerInfo,
    EngineSnapshot,
    FailureRecord,
    ServiceKey,
    ServiceSpec,
    finished_job,
)


@dataclass(frozen=True)
class Observations:
    """What earlier snapshots and the agent's own steps showed, per container id. Kept in
    memory: after an agent restart it starts empty (a crash the agent did not see running
    is then not counted, and exited jobs are taken as finished)."""

    # Up at some point (seen running, or started by the agent): its next exit is a crash.
    seen_running: frozenset[str] = frozenset()
    restart_counts: Mapping[str, int] = field(default_factory=dict)  # the engine's, last seen
    # Docker resets ExitCode to 0 once it starts the container again: the crash's code is
    # visible only while the container is down, so it is kept for the messages.
    exit_codes: Mapping[str, int] = field(default_factory=dict)
    # Stopped by the agent (target state `stopped`, or given up): an exit 0 is not a job done.
    agent_stopped: frozenset[str] = frozenset()

    def started(self, container_id: str) -> Observations:
        """The agent started it: its next exit counts, even if no snapshot saw it running."""
        return replace(
            self,
            seen_running=self.seen_running | {container_id},
            agent_stopped=self.agent_stopped - {container_id},
        )

    def stopped(self, container_id: str) -> Observations:
        return replace(
            self,
            seen_running=self.seen_running - {container_id},
            agent_stopped=self.agent_stopped | {container_id},
        )


@dataclass(frozen=True)
class Failed:
    """The service's new failure record (its crash was counted)."""

    key: ServiceKey
    record: FailureRecord


@dataclass(frozen=True)
class Cleared:
    key: ServiceKey
    why: str  # "recovered", "job finished", "target changed"


FailureEvent = Failed | Cleared


def observe(
    previous: Observations,
    failures: Mapping[ServiceKey, FailureRecord],
    snapshot: EngineSnapshot,
    target: Mapping[int, AppSpec],
    now: float,
) -> tuple[Observations, list[FailureEvent]]:
    run = _Run(
        seen=set(previous.seen_running),
        restarts=dict(previous.restart_counts),
        exits=dict(previous.exit_codes),
        held=set(previous.agent_stopped),
        failures=dict(failures),
        now=now,
    )
    wanted: dict[ServiceKey, str] = {}
    for app in target.values():
        for spec in app.services:
            wanted[spec.key] = spec.config_hash
            containers = snapshot.containers_of(spec.key)
            if spec.state == "stopped":
                # Down on purpose: neither its exit nor an exit 0 later is a crash or a job.
                ids = {c.id for c in containers}
                run.seen -= ids
                run.held |= ids
                continue
            for c in containers:
                if c.config_hash == spec.config_hash:
                    run.container(spec, c, previous.restart_counts.get(c.id))
    for key, record in list(run.failures.items()):
        if wanted.get(key) != record.config_hash:
            run.clear(key, "target changed")  # old failures no longer apply
    live = {c.id for c in snapshot.containers}
    observations = Observations(
        seen_running=frozenset(run.seen & live),
        restart_counts={cid: n for cid, n in run.restarts.items() if cid in live},
        exit_codes={cid: code for cid, code in run.exits.items() if cid in live},
        agent_stopped=frozenset(run.held & live),
    )
    return observations, run.events


@dataclass
class _Run:
    """The state of one observation, updated container by container."""

    seen: set[str]
    restarts: dict[str, int]
    exits: dict[str, int]
    held: set[str]
    failures: dict[ServiceKey, FailureRecord]
    now: float
    events: list[FailureEvent] = field(default_factory=list)

    def container(self, spec: ServiceSpec, c: ContainerInfo, restarts_before: int | None) -> None:
        record = self.failures.get(spec.key)
        if c.status != "running" and c.exit_code:
            self.exits[c.id] = c.exit_code
        self.restarts[c.id] = c.restart_count
        if finished_job(spec, c, frozenset(self.held)):
            self.seen.discard(c.id)
            if record is not None and record.reason == "CrashLoopBackOff":
                self.clear(spec.key, "job finished")
        elif c.status in ("exited", "dead") and c.id in self.seen:
            self.crash(spec, f"{c.id}@{c.started_at}", f"container exited with code {c.exit_code}")
        elif restarts_before is not None and c.restart_count > restarts_before:
            self.crash(
                spec,
                f"{c.id}#{c.restart_count}",
                f"container restarted by the engine ({c.restart_count} restarts"
                f"{self._last_exit(c.id)})",
            )
        elif c.status == "running":
            self.seen.add(c.id)
            self.held.discard(c.id)
            stable = self.now - c.started_at >= STABLE_AFTER_S
            if record is not None and record.reason == "CrashLoopBackOff" and stable:
                self.clear(spec.key, "recovered")

    def crash(self, spec: ServiceSpec, marker: str, message: str) -> None:
        previous = self.failures.get(spec.key)
        if previous is not None and previous.marker == marker:
            return  # this exit was counted already
        record = record_failure(
            previous, "CrashLoopBackOff", message, self.now, spec.config_hash, marker
        )
        self.failures[spec.key] = record
        self.events.append(Failed(spec.key, record))

    def clear(self, key: ServiceKey, why: str) -> None:
        if self.failures.pop(key, None) is not None:
            self.events.append(Cleared(key, why))

    def _last_exit(self, container_id: str) -> str:
        code = self.exits.get(container_id)
        return "" if code is None else f", last exit code {code}"

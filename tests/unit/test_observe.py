"""Crash bookkeeping as a pure function: properties over random histories of one service's
containers, and the cases of issue 12 (finished jobs, manual stops, engine restarts)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st
from iotistic_agent.orchestrator.model import (
    AppSpec,
    ContainerInfo,
    EngineSnapshot,
    FailureRecord,
    ServiceKey,
    ServiceSpec,
    finished_job,
)
from iotistic_agent.orchestrator.observe import (
    Cleared,
    Failed,
    FailureEvent,
    Observations,
    observe,
)
from planner_support import app, service

KEY = (1, "job")


def spec_with(restart: str = "always", state: str = "running") -> ServiceSpec:
    return service(1, "job", restart=restart, state=state)


def container(
    spec: ServiceSpec, status: str, exit_code: int = 0, **fields: object
) -> ContainerInfo:
    base = ContainerInfo(
        "c1", "job", 1, 0, "job", spec.image, spec.config_hash, "running", started_at=1000.0
    )
    return replace(base, status=status, exit_code=exit_code, **fields)  # type: ignore[arg-type]


def target_of(spec: ServiceSpec) -> dict[int, AppSpec]:
    return {1: app(1, spec)}


def apply(
    failures: Mapping[ServiceKey, FailureRecord], events: list[FailureEvent]
) -> dict[ServiceKey, FailureRecord]:
    result = dict(failures)
    for event in events:
        if isinstance(event, Failed):
            result[event.key] = event.record
        else:
            result.pop(event.key, None)
    return result


def history(
    spec: ServiceSpec, states: list[ContainerInfo], start: Observations | None = None
) -> tuple[Observations, dict[ServiceKey, FailureRecord], list[FailureEvent]]:
    obs, failures, seen = start or Observations(), {}, []
    for now, c in enumerate(states, start=1000):
        obs, events = observe(obs, failures, EngineSnapshot(containers=(c,)), target_of(spec), now)
        failures = apply(failures, events)
        seen += events
    return obs, failures, seen


# -- the cases of issue 12 -------------------------------------------------------------------


def test_a_job_exiting_0_under_restart_no_or_on_failure_is_finished_not_a_crash() -> None:
    for restart in ("no", "on-failure", "on-failure:3"):
        spec = spec_with(restart)
        obs, failures, events = history(
            spec, [container(spec, "running"), container(spec, "exited", 0)]
        )
        assert events == [] and failures == {}, restart
        assert finished_job(spec, container(spec, "exited", 0), obs.agent_stopped)


def test_a_non_zero_exit_of_an_on_failure_service_is_still_a_crash_with_backoff() -> None:
    spec = spec_with("on-failure")
    _, failures, events = history(spec, [container(spec, "running"), container(spec, "exited", 2)])
    assert [type(e) for e in events] == [Failed]
    assert failures[KEY].reason == "CrashLoopBackOff"
    assert failures[KEY].next_retry_at == 1001 + 10
    assert "code 2" in failures[KEY].message


def test_an_exit_0_of_a_restart_always_service_stays_a_crash_to_correct() -> None:
    spec = spec_with("always")  # e.g. a manual `docker stop` of a service that handles SIGTERM
    _, failures, _ = history(spec, [container(spec, "running"), container(spec, "exited", 0)])
    assert failures[KEY].reason == "CrashLoopBackOff"


def test_a_job_that_finishes_after_crashing_clears_its_crash_loop() -> None:
    spec = spec_with("no")
    states = [
        container(spec, "running"),
        container(spec, "exited", 1),
        container(spec, "running", started_at=1002.0),
        container(spec, "exited", 0, started_at=1002.0),
    ]
    _, failures, events = history(spec, states)
    assert failures == {}
    assert events[-1] == Cleared(KEY, "job finished")


def test_a_container_the_agent_stopped_is_no_finished_job_when_its_target_runs_again() -> None:
    spec = spec_with("no")
    stopped = spec_with("no", state="stopped")
    obs, _, _ = history(stopped, [container(stopped, "exited", 0)])
    assert "c1" in obs.agent_stopped
    assert not finished_job(spec, container(spec, "exited", 0), obs.agent_stopped)
    # The agent starts it again: from then on an exit 0 is a job done.
    assert finished_job(spec, container(spec, "exited", 0), obs.started("c1").agent_stopped)


def test_an_engine_restart_counts_once_and_names_the_exit_code_seen_while_down() -> None:
    spec = spec_with("always")
    states = [
        container(spec, "running", restart_count=0),
        container(spec, "restarting", 3, restart_count=0),
        container(spec, "running", restart_count=1),
        container(spec, "running", restart_count=1),
    ]
    _, failures, events = history(spec, states)
    assert len(events) == 1
    assert (
        failures[KEY].message == "container restarted by the engine (1 restarts, last exit code 3)"
    )


def test_a_failure_of_an_older_target_is_cleared() -> None:
    spec = spec_with()
    old = FailureRecord("CrashLoopBackOff", "x", 1, 0.0, 0.0, "other-hash")
    _, events = observe(Observations(), {KEY: old}, EngineSnapshot(), target_of(spec), 0.0)
    assert events == [Cleared(KEY, "target changed")]


# -- properties --------------------------------------------------------------------------------

RESTARTS = ["always", "unless-stopped", "no", "on-failure", "on-failure:2"]
STATUSES = ["created", "running", "restarting", "paused", "exited", "dead"]


@st.composite
def container_states(draw: st.DrawFn, spec: ServiceSpec) -> list[ContainerInfo]:
    """A random history of the service's containers: statuses, exits, engine restarts,
    replacements (a new id) and old configurations."""
    states = []
    restarts, started, cid = 0, 100.0, 1
    for _ in range(draw(st.integers(1, 12))):
        if draw(st.booleans()) and draw(st.booleans()):
            cid += 1  # replaced by a new container
            restarts = 0
        restarts += draw(st.sampled_from([0, 0, 1]))
        started += draw(st.sampled_from([0.0, 5.0, 90.0]))
        states.append(
            ContainerInfo(
                f"c{cid}",
                "job",
                1,
                0,
                "job",
                spec.image,
                draw(st.sampled_from([spec.config_hash, spec.config_hash, "old"])),
                draw(st.sampled_from(STATUSES)),
                started_at=started,
                exit_code=draw(st.sampled_from([0, 0, 1, 137])),
                restart_count=restarts,
            )
        )
    return states


@st.composite
def cases(draw: st.DrawFn) -> tuple[ServiceSpec, list[ContainerInfo]]:
    spec = spec_with(
        draw(st.sampled_from(RESTARTS)), draw(st.sampled_from(["running", "running", "stopped"]))
    )
    return spec, draw(container_states(spec))


@settings(max_examples=300, deadline=None)
@given(case=cases())
def test_bookkeeping_is_pure_idempotent_and_forgets_removed_containers(
    case: tuple[ServiceSpec, list[ContainerInfo]],
) -> None:
    spec, states = case
    target = target_of(spec)
    obs, failures = Observations(), {}
    for now, c in enumerate(states, start=1000):
        snapshot = EngineSnapshot(containers=(c,))
        result = observe(obs, failures, snapshot, target, now)
        assert result == observe(obs, failures, snapshot, target, now)  # a pure function
        obs, events = result
        failures = apply(failures, events)
        # The same snapshot again counts nothing twice.
        _, again = observe(obs, failures, snapshot, target, now)
        assert not [e for e in again if isinstance(e, Failed)], (c, again)
        # Only live containers are remembered.
        remembered = obs.seen_running | obs.agent_stopped | set(obs.restart_counts)
        assert remembered | set(obs.exit_codes) <= {c.id}
        for event in events:
            assert event.key == KEY
            if isinstance(event, Failed):
                # Crashes belong to a running target's current configuration, never to a
                # stopped service or a finished job.
                assert spec.state != "stopped" and c.config_hash == spec.config_hash
                assert not finished_job(spec, c, obs.agent_stopped)
                assert event.record.config_hash == spec.config_hash
        if finished_job(spec, c, obs.agent_stopped) and c.config_hash == spec.config_hash:
            assert KEY not in failures or failures[KEY].reason != "CrashLoopBackOff"
        for record in failures.values():
            assert record.config_hash == spec.config_hash


@settings(max_examples=200, deadline=None)
@given(case=cases())
def test_every_exit_of_a_container_seen_running_is_counted_exactly_once_unless_a_job_finished(
    case: tuple[ServiceSpec, list[ContainerInfo]],
) -> None:
    spec, states = case
    spec = replace(spec, state="running")
    target = target_of(spec)
    obs, failures = Observations(), {}
    for now, c in enumerate(states, start=1000):
        c = replace(c, config_hash=spec.config_hash)
        was_up = c.id in obs.seen_running
        before = failures.get(KEY)
        obs, events = observe(obs, failures, EngineSnapshot(containers=(c,)), target, now)
        failures = apply(failures, events)
        marker = f"{c.id}@{c.started_at}"
        crashed = c.status in ("exited", "dead") and not finished_job(spec, c, obs.agent_stopped)
        if was_up and crashed:
            assert failures[KEY].marker == marker
            new_count = before is None or before.marker != marker
            assert (failures[KEY].retry_count > (before.retry_count if before else 0)) == new_count

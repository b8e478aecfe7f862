"""Finished jobs (restart "no"/"on-failure", exit 0) and network attachment drift, in the
planner and in the reported status."""

from __future__ import annotations

from dataclasses import replace

import pytest
from iotistic_agent.orchestrator.model import (
    ContainerInfo,
    EngineSnapshot,
    PlanContext,
    ServiceSpec,
)
from iotistic_agent.orchestrator.planner import plan
from iotistic_agent.orchestrator.status import is_settled, service_state
from iotistic_agent.orchestrator.steps import ConnectNetwork, DisconnectNetwork, Noop, Start
from planner_support import app, service

NET, OTHER_APP_NET = "1_default", "2_default"
IMAGE = "reg/img:v1"


def job(restart: str = "no", **fields: object) -> ServiceSpec:
    return service(1, "init", IMAGE, restart=restart, networks=((NET, ()),), **fields)


def container_of(
    spec: ServiceSpec, status: str, exit_code: int = 0, **fields: object
) -> ContainerInfo:
    c = ContainerInfo(
        f"{spec.service_name}-1",
        spec.container_name,
        spec.app_id,
        spec.service_id,
        spec.service_name,
        spec.image,
        spec.config_hash,
        "running",
        started_at=1.0,
        restart=spec.restart,
        networks=spec.network_names,
    )
    return replace(c, status=status, exit_code=exit_code, **fields)  # type: ignore[arg-type]


def snapshot(*containers: ContainerInfo, networks: tuple[str, ...] = (NET,)) -> EngineSnapshot:
    return EngineSnapshot(
        containers=containers,
        images=frozenset({IMAGE}),
        networks={n: int(n.split("_")[0]) for n in networks},
    )


@pytest.mark.parametrize("restart", ["no", "on-failure", "on-failure:3"])
def test_a_job_that_exited_0_is_not_started_again_and_its_dependants_start(restart: str) -> None:
    init = job(restart)
    web = service(1, "web", IMAGE, depends_on=("init",), networks=((NET, ()),))
    steps = plan(snapshot(container_of(init, "exited", 0)), {1: app(1, init, web)}, PlanContext(0))
    assert steps == [Start(web)]


@pytest.mark.parametrize(
    ("restart", "code"), [("always", 0), ("unless-stopped", 0), ("on-failure", 1)]
)
def test_an_exit_that_is_no_finished_job_is_started_again(restart: str, code: int) -> None:
    spec = job(restart)
    steps = plan(snapshot(container_of(spec, "exited", code)), {1: app(1, spec)}, PlanContext(0))
    assert steps == [Start(spec)]


def test_a_container_the_agent_stopped_is_started_when_its_target_runs_again() -> None:
    spec = job("no")
    c = container_of(spec, "exited", 0)
    ctx = PlanContext(0, agent_stopped=frozenset({c.id}))
    assert plan(snapshot(c), {1: app(1, spec)}, ctx) == [Start(spec)]


def test_a_dependant_waits_for_a_job_that_has_not_run_yet() -> None:
    init = job("no")
    web = service(1, "web", IMAGE, depends_on=("init",), networks=((NET, ()),))
    created = container_of(init, "created")
    steps = plan(snapshot(created), {1: app(1, init, web)}, PlanContext(0))
    assert Noop("waiting for init", web.key) in steps


def test_a_running_container_disconnected_from_its_network_is_connected_again() -> None:
    spec = job("always")
    detached = container_of(spec, "running", networks=())
    steps = plan(snapshot(detached), {1: app(1, spec)}, PlanContext(0))
    assert steps == [ConnectNetwork(detached.id, spec, NET)]


def test_an_extra_network_of_the_agent_is_left_and_a_foreign_one_is_not_touched() -> None:
    spec = job("always")
    extra = container_of(spec, "running", networks=(NET, OTHER_APP_NET, "bridge"))
    current = snapshot(extra, networks=(NET, OTHER_APP_NET))
    steps = plan(current, {1: app(1, spec), 2: app(2)}, PlanContext(0))
    assert steps == [DisconnectNetwork(extra.id, spec.key, OTHER_APP_NET)]


def test_a_missing_network_is_created_before_anyone_joins_it() -> None:
    spec = job("always")
    detached = container_of(spec, "running", networks=())
    steps = plan(snapshot(detached, networks=()), {1: app(1, spec)}, PlanContext(0))
    assert not [s for s in steps if isinstance(s, ConnectNetwork)]


# -- status ---------------------------------------------------------------------------------


def test_a_finished_job_is_reported_exited_with_its_code_and_counts_as_settled() -> None:
    spec = job("no")
    state = service_state(spec, container_of(spec, "exited", 0), None, snapshot())
    assert (state["status"], state["exitCode"]) == ("Exited", 0)
    assert is_settled(state)


def test_a_non_zero_exit_is_not_settled_and_a_running_container_has_no_exit_code() -> None:
    spec = job("no")
    crashed = service_state(spec, container_of(spec, "exited", 3), None, snapshot())
    assert (crashed["status"], crashed["exitCode"], is_settled(crashed)) == ("Exited", 3, False)
    running = service_state(spec, container_of(spec, "running"), None, snapshot())
    assert (running["status"], running["exitCode"]) == ("Running", None)


def test_a_running_container_missing_a_network_is_not_reported_running() -> None:
    spec = job("always")
    state = service_state(spec, container_of(spec, "running", networks=()), None, snapshot())
    assert state["status"] == "Updating"
    assert not is_settled(state)


def test_a_stopped_service_stays_stopped_not_exited() -> None:
    spec = job("no", state="stopped")
    state = service_state(spec, container_of(spec, "exited", 0), None, snapshot())
    assert (state["status"], state["exitCode"]) == ("Stopped", 0)

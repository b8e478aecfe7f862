"""Stops and kills of one batch: each with its container's own grace period, dependants
before what they depend on, everything else in the same batch."""

from __future__ import annotations

import asyncio

from hypothesis import HealthCheck, given, settings
from iotistic_agent.engine.memory import MemoryEngine
from iotistic_agent.orchestrator.model import AppSpec, ContainerInfo, EngineSnapshot, PlanContext
from iotistic_agent.orchestrator.planner import plan
from iotistic_agent.orchestrator.steps import Kill, Noop, Step, Stop
from iotistic_agent.orchestrator.stop_order import dependencies
from planner_support import AgentMemory, app, apply_batch, converge, service
from test_planner_properties import IMAGES, MAX_PASSES, targets


def container(cid: str, name: str, *, app_id: int = 1, status: str = "running", **fields: object):  # type: ignore[no-untyped-def]
    return ContainerInfo(cid, name, app_id, 1, name, "img", "h", status, **fields)  # type: ignore[arg-type]


def kills(steps: list[Step]) -> dict[str, float]:
    return {s.container_id: s.timeout_s for s in steps if isinstance(s, Kill)}


def test_a_container_no_longer_in_the_target_is_killed_with_its_own_grace_period() -> None:
    quick = container("a", "quick", stop_grace_s=3.0)
    slow = container("b", "slow", stop_grace_s=60.0)
    steps = plan(EngineSnapshot(containers=(quick, slow)), {}, PlanContext(now=0))
    assert kills(steps) == {"a": 3.0, "b": 60.0}


def test_removing_an_app_kills_independent_services_together_and_dependants_first() -> None:
    db = container("db", "db")
    api = container("api", "api", depends_on=("db",))
    worker = container("worker", "worker")
    first = plan(EngineSnapshot(containers=(db, api, worker)), {}, PlanContext(now=0))
    assert set(kills(first)) == {"api", "worker"}
    assert Noop("stops after api", (1, "db")) in first
    # Once the dependant is gone, its dependency goes in the next batch.
    second = plan(EngineSnapshot(containers=(db,)), {}, PlanContext(now=0))
    assert set(kills(second)) == {"db"}


def test_a_dependant_that_already_exited_holds_nothing_back() -> None:
    db = container("db", "db")
    api = container("api", "api", status="exited", depends_on=("db",))
    steps = plan(EngineSnapshot(containers=(db, api)), {}, PlanContext(now=0))
    assert set(kills(steps)) == {"api", "db"}


def test_services_of_other_apps_never_wait_for_each_other() -> None:
    db = container("db", "db", app_id=1)
    api = container("api", "api", app_id=2, depends_on=("db",))
    steps = plan(EngineSnapshot(containers=(db, api)), {}, PlanContext(now=0))
    assert set(kills(steps)) == {"api", "db"}


def test_a_dependency_cycle_between_old_labels_stops_everything_rather_than_nothing() -> None:
    a = container("a", "a", depends_on=("b",))
    b = container("b", "b", depends_on=("a",))
    steps = plan(EngineSnapshot(containers=(a, b)), {}, PlanContext(now=0))
    assert set(kills(steps)) == {"a", "b"}


def test_the_target_says_what_a_service_still_in_it_depends_on() -> None:
    spec = service(1, "api", depends_on=("db",))
    labelled = container("c", "api", depends_on=("cache",))
    assert dependencies(labelled, {1: app(1, spec)}) == ("db",)
    assert dependencies(labelled, {}) == ("cache",)


def test_stopping_an_app_stops_its_dependants_first() -> None:
    async def scenario() -> list[str]:
        engine = MemoryEngine(registry={"reg/img:v1"})
        db, api = service(1, "db"), service(1, "api", depends_on=("db",))
        await converge(engine, {1: app(1, db, api)})
        engine.log.clear()
        stopped = {
            1: app(
                1,
                service(1, "db", state="stopped"),
                service(1, "api", state="stopped", depends_on=("db",)),
            )
        }
        await converge(engine, stopped)
        return engine.log

    assert asyncio.run(scenario()) == ["stop api reg/img:v1", "stop db reg/img:v1"]


def _violations(steps: list[Step], snapshot: EngineSnapshot, target: dict[int, AppSpec]) -> list:
    """Stops of a container in the same batch as a stop of one of its (up) dependants."""
    up = {c.id: c for c in snapshot.containers if c.status in ("running", "restarting", "paused")}
    stopping = [
        up[s.container_id] for s in steps if isinstance(s, Stop | Kill) and s.container_id in up
    ]
    return [
        (c.service_name, d.service_name)
        for c in stopping
        for d in stopping
        if d.app_id == c.app_id
        and d.service_name != c.service_name
        and c.service_name in dependencies(d, target)
    ]


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(previous=targets(), target=targets())
def test_no_batch_stops_a_service_together_with_a_service_that_depends_on_it(
    previous: dict[int, AppSpec], target: dict[int, AppSpec]
) -> None:
    async def scenario() -> None:
        engine = MemoryEngine(registry=set(IMAGES))
        memory = AgentMemory()
        await converge(engine, previous, MAX_PASSES, memory)
        for _ in range(MAX_PASSES):
            snapshot = await engine.snapshot()
            steps = plan(snapshot, target, memory.context(engine.clock))
            if not steps:
                return
            # Targets are acyclic (validation refuses cycles), so nothing is ever released.
            assert _violations(steps, snapshot, target) == []
            await apply_batch(engine, steps, memory)
        raise AssertionError("no convergence")

    asyncio.run(scenario())


def test_the_old_image_is_deleted_only_once_a_held_container_has_gone_too() -> None:
    async def scenario() -> list[str]:
        engine = MemoryEngine(registry={"reg/img:v1", "reg/img:v2"})

        def release(image: str) -> dict[int, AppSpec]:
            db = service(1, "db", image, strategy="delete-then-download")
            api = service(1, "api", image, strategy="delete-then-download", depends_on=("db",))
            return {1: app(1, db, api)}

        await converge(engine, release("reg/img:v1"))
        engine.log.clear()
        await converge(engine, release("reg/img:v2"))  # an image in use would raise
        return engine.log

    log = asyncio.run(scenario())
    assert log[:5] == [
        "stop api reg/img:v1",
        "remove api reg/img:v1",
        "stop db reg/img:v1",
        "remove db reg/img:v1",
        "rmi reg/img:v1",
    ]


def test_a_hand_over_whose_new_container_was_paused_meanwhile_still_retires_the_old_one() -> None:
    # The old container's kill waited for a dependant while the new one reached its target
    # state, paused: it did run, so the old one goes now instead of waiting forever.
    spec = service(1, "db", "reg/img:v2", strategy="hand-over", state="paused")
    new = ContainerInfo("new", "n", 1, 0, "db", spec.image, spec.config_hash, "paused")
    old = ContainerInfo("old", "o", 1, 0, "db", "reg/img:v1", "old-hash", "running")
    steps = plan(
        EngineSnapshot(containers=(new, old)),
        {1: app(1, spec)},
        PlanContext(1, locks=frozenset({1})),
    )
    assert set(kills(steps)) == {"old"}


def test_a_hand_over_paused_while_removed_dependants_stop_one_by_one_converges() -> None:
    async def scenario() -> None:
        engine = MemoryEngine(registry={"reg/img:v1"})
        chain = [service(1, "s0", strategy="hand-over")]
        chain += [service(1, f"s{i}", depends_on=(f"s{i - 1}",)) for i in (1, 2, 3)]
        await converge(engine, {1: app(1, *chain)})
        changed = service(1, "s0", strategy="hand-over", state="paused", environment=(("A", "1"),))
        await converge(engine, {1: app(1, changed)})

    asyncio.run(scenario())

"""Planner properties: from any current state, applying the plan reaches the target in a
bounded number of passes, and a converged state plans nothing."""

from __future__ import annotations

import asyncio
from dataclasses import replace

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from iotistic_agent.engine.memory import MemoryEngine
from iotistic_agent.orchestrator.model import (
    AppSpec,
    ContainerInfo,
    EngineSnapshot,
    Mount,
    PlanContext,
    PortBinding,
    finished_job,
)
from iotistic_agent.orchestrator.planner import plan
from iotistic_agent.orchestrator.steps import Kill
from planner_support import AgentMemory, app, converge, service

IMAGES = ["reg/img:v1", "reg/img:v2", "reg/other:v1"]
STRATEGIES = ["download-then-kill", "kill-then-download", "delete-then-download", "hand-over"]
MAX_PASSES = 12


@st.composite
def app_specs(draw: st.DrawFn, app_id: int) -> AppSpec:
    count = draw(st.integers(1, 4))
    services = []
    for i in range(count):
        name = f"s{i}"
        earlier = [f"s{j}" for j in range(i)]
        volumes = draw(st.lists(st.sampled_from(["data", "logs"]), unique=True, max_size=2))
        nets = draw(st.sampled_from([("default",), ("backend",), ("default", "backend")]))
        services.append(
            service(
                app_id,
                name,
                image=draw(st.sampled_from(IMAGES)),
                state=draw(st.sampled_from(["running", "running", "stopped", "paused"])),
                strategy=draw(st.sampled_from(STRATEGIES)),
                environment=(("MODE", draw(st.sampled_from(["a", "b"]))),),
                mounts=tuple(Mount("volume", f"{app_id}_{v}", f"/{v}", False) for v in volumes),
                networks=tuple((f"{app_id}_{n}", ()) for n in nets),
                ports=draw(
                    st.sampled_from([(), (PortBinding(80, "tcp", "", 8000 + app_id * 10 + i),)])
                ),
                restart=draw(st.sampled_from(["always", "no", "unless-stopped"])),
                memory_bytes=draw(st.sampled_from([None, 64 << 20])),
                depends_on=tuple(
                    draw(st.lists(st.sampled_from(earlier), unique=True)) if earlier else ()
                ),
            )
        )
    return app(app_id, *services)


@st.composite
def targets(draw: st.DrawFn) -> dict[int, AppSpec]:
    ids = draw(st.lists(st.sampled_from([1001, 1002, 1003]), unique=True, max_size=3))
    return {i: draw(app_specs(i)) for i in ids}


@st.composite
def drift(draw: st.DrawFn) -> list[tuple[str, int]]:
    """Random damage done behind the agent's back: (kind, index into containers)."""
    kinds = ["remove", "stop", "pause", "unpause", "foreign-copy", "drop-image", "drop-network"]
    kinds += ["finish", "disconnect", "connect-other"]
    return draw(st.lists(st.tuples(st.sampled_from(kinds), st.integers(0, 20)), max_size=6))


async def damage(engine: MemoryEngine, changes: list[tuple[str, int]]) -> None:
    for kind, index in changes:
        ids = sorted(engine.containers)
        in_use = {c.image for c in engine.containers.values()}
        if kind == "drop-image" and engine.images - in_use:
            # Like `docker rmi`: an image used by a container cannot be removed.
            images = sorted(engine.images - in_use)
            engine.images.discard(images[index % len(images)])
            continue
        if kind == "drop-network" and engine.networks:
            nets = sorted(engine.networks)
            engine.networks.pop(nets[index % len(nets)])
            continue
        if not ids:
            continue
        cid = ids[index % len(ids)]
        c = engine.containers[cid]
        if kind == "remove":
            del engine.containers[cid]
        elif kind == "stop":
            engine.containers[cid] = replace(c, status="exited", exit_code=137)
        elif kind == "finish" and c.status == "running":
            # Exited 0 by itself: a finished job under restart "no"/"on-failure".
            engine.containers[cid] = replace(c, status="exited", exit_code=0)
        elif kind == "disconnect" and c.networks:
            gone = c.networks[index % len(c.networks)]
            engine.containers[cid] = replace(c, networks=tuple(n for n in c.networks if n != gone))
        elif kind == "connect-other" and engine.networks:
            other = sorted(engine.networks)[index % len(engine.networks)]
            engine.containers[cid] = replace(c, networks=tuple(sorted({*c.networks, other})))
        elif kind == "pause" and c.status == "running":
            engine.containers[cid] = replace(c, status="paused")
        elif kind == "unpause" and c.status == "paused":
            engine.containers[cid] = replace(c, status="running")
        elif kind == "foreign-copy":
            engine.containers[cid + "x"] = replace(c, id=cid + "x", name=c.name + "-copy")


def assert_converged(engine: MemoryEngine, target: dict[int, AppSpec], memory: AgentMemory) -> None:
    wanted_keys = set()
    for a in target.values():
        for s in a.services:
            wanted_keys.add(s.key)
            mine = [c for c in engine.containers.values() if c.key == s.key]
            if s.state == "stopped":
                assert all(c.status not in ("running", "paused") for c in mine), (s, mine)
                assert all(c.config_hash == s.config_hash for c in mine)
                continue
            assert len(mine) == 1, (s.key, mine)
            (c,) = mine
            assert c.config_hash == s.config_hash
            if finished_job(s, c, frozenset(memory.stopped)):
                continue  # its job is done: left exited, not restarted
            assert c.status == ("paused" if s.state == "paused" else "running")
            assert set(c.networks) & set(engine.networks) == set(s.network_names)
            assert (c.restart, c.memory_bytes) == (s.restart, s.memory_bytes)
        assert set(a.networks) <= set(engine.networks)
        assert set(a.volumes) <= set(engine.volumes)
    assert all(c.key in wanted_keys for c in engine.containers.values())
    assert set(engine.networks) == {n for a in target.values() for n in a.networks}


# A hand-over that drops a resource limit: same config hash, so the same container name
# as the old container, which has to go before the new one can be created.
_LIMITED = service(1002, "s2", strategy="hand-over", memory_bytes=64 << 20)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(previous=targets(), target=targets(), changes=drift())
@example(
    previous={1002: app(1002, _LIMITED)},
    target={1002: app(1002, replace(_LIMITED, memory_bytes=None))},
    changes=[],
)
def test_any_state_converges_to_the_target_in_bounded_passes(
    previous: dict[int, AppSpec], target: dict[int, AppSpec], changes: list[tuple[str, int]]
) -> None:
    async def scenario() -> None:
        engine = MemoryEngine(registry=set(IMAGES))
        memory = AgentMemory()
        await converge(engine, previous, MAX_PASSES, memory)
        await damage(engine, changes)
        batches = await converge(engine, target, MAX_PASSES, memory)
        assert len(batches) <= MAX_PASSES
        assert_converged(engine, target, memory)
        # Converged means nothing more to do, and planning is a pure function of its inputs.
        snap = await engine.snapshot()
        ctx = memory.context(engine.clock)
        assert plan(snap, target, ctx) == []
        assert plan(snap, target, ctx) == plan(snap, target, ctx)

    asyncio.run(scenario())


@settings(max_examples=50, deadline=None)
@given(target=targets())
def test_a_converged_state_plans_nothing_even_with_unrelated_foreign_objects(
    target: dict[int, AppSpec],
) -> None:
    async def scenario() -> None:
        engine = MemoryEngine(registry=set(IMAGES))
        await converge(engine, target, MAX_PASSES)
        engine.images.add("someone/else:latest")  # images are not ours to manage
        assert plan(await engine.snapshot(), target, PlanContext(now=engine.clock)) == []

    asyncio.run(scenario())


def test_container_of_a_removed_app_is_killed_and_its_volumes_and_networks_go() -> None:
    async def scenario() -> None:
        engine = MemoryEngine(registry=set(IMAGES))
        a = app(
            1001,
            service(
                1001,
                "web",
                mounts=(Mount("volume", "1001_data", "/d", False),),
                networks=(("1001_default", ()),),
            ),
        )
        await converge(engine, {1001: a})
        assert engine.volumes == {"1001_data": 1001}
        await converge(engine, {})
        assert engine.containers == {} and engine.volumes == {} and engine.networks == {}

    asyncio.run(scenario())


def test_a_container_of_an_app_outside_the_target_is_killed() -> None:
    stray = ContainerInfo("x", "n", 5, 1, "s", "img", "h", "running")
    steps = plan(EngineSnapshot(containers=(stray,)), {}, PlanContext(now=0))
    assert steps == [Kill("x", (5, "s"))]

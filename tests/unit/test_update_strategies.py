"""Each update strategy's order of operations, observed on the in-memory engine."""

from __future__ import annotations

import asyncio
from dataclasses import replace

from iotistic_agent.engine.memory import MemoryEngine
from iotistic_agent.orchestrator.model import PortBinding, ServiceSpec, changed_fields, config_hash
from planner_support import app, converge, service

OLD, NEW = "reg/img:v1", "reg/img:v2"


def update_log(strategy: str, **fields: object) -> list[str]:
    async def scenario() -> list[str]:
        engine = MemoryEngine(registry={OLD, NEW})
        await converge(
            engine, {1001: app(1001, service(1001, "web", OLD, strategy=strategy, **fields))}
        )
        engine.log.clear()
        await converge(
            engine, {1001: app(1001, service(1001, "web", NEW, strategy=strategy, **fields))}
        )
        return engine.log

    return asyncio.run(scenario())


def test_download_then_kill_has_the_new_image_before_touching_the_old_container() -> None:
    assert update_log("download-then-kill") == [
        f"pull {NEW}",
        f"stop web {OLD}",
        f"remove web {OLD}",
        f"create web {NEW}",
        f"start web {NEW}",
    ]


def test_kill_then_download_stops_the_old_container_first() -> None:
    assert update_log("kill-then-download") == [
        f"stop web {OLD}",
        f"remove web {OLD}",
        f"pull {NEW}",
        f"create web {NEW}",
        f"start web {NEW}",
    ]


def test_delete_then_download_also_deletes_the_old_image_before_downloading() -> None:
    assert update_log("delete-then-download") == [
        f"stop web {OLD}",
        f"remove web {OLD}",
        f"rmi {OLD}",
        f"pull {NEW}",
        f"create web {NEW}",
        f"start web {NEW}",
    ]


def test_hand_over_runs_the_new_container_before_killing_the_old_one() -> None:
    assert update_log("hand-over") == [
        f"pull {NEW}",
        f"create web {NEW}",
        f"start web {NEW}",
        f"stop web {OLD}",
        f"remove web {OLD}",
    ]


def test_hand_over_with_a_published_port_falls_back_to_download_then_kill() -> None:
    ports = (PortBinding(80, "tcp", "", 8080),)
    assert update_log("hand-over", ports=ports)[:3] == [
        f"pull {NEW}",
        f"stop web {OLD}",
        f"remove web {OLD}",
    ]


def test_nothing_of_a_new_release_starts_before_all_its_images_are_present() -> None:
    async def scenario() -> None:
        engine = MemoryEngine(registry={OLD, NEW, "reg/db:v2"})
        v1 = app(1001, service(1001, "web", OLD), service(1001, "db", OLD))
        await converge(engine, {1001: v1})
        engine.log.clear()
        v2 = app(1001, service(1001, "web", NEW), service(1001, "db", "reg/db:v2"))
        await converge(engine, {1001: v2})
        first_change = min(i for i, line in enumerate(engine.log) if not line.startswith("pull"))
        assert sorted(engine.log[:first_change]) == ["pull reg/db:v2", f"pull {NEW}"]

    asyncio.run(scenario())


def test_restart_policy_and_limits_change_in_place_without_recreation() -> None:
    async def scenario() -> None:
        engine = MemoryEngine(registry={OLD})
        await converge(engine, {1: app(1, service(1, "web", OLD))})
        (before,) = engine.containers
        engine.log.clear()
        await converge(
            engine,
            {
                1: app(
                    1,
                    service(
                        1, "web", OLD, restart="no", memory_bytes=64 << 20, nano_cpus=500_000_000
                    ),
                )
            },
        )
        assert list(engine.containers) == [before]
        assert engine.log == ["update web"]

    asyncio.run(scenario())


def test_reordered_environment_and_ports_keep_the_same_config_hash() -> None:
    a = service(1, "web", OLD, environment=(("A", "1"), ("B", "2")))
    b: ServiceSpec = replace(a, environment=(("A", "1"), ("B", "2")))
    assert config_hash(a) == config_hash(b)
    changed = replace(a, environment=(("A", "1"), ("B", "3")))
    assert config_hash(changed) != config_hash(a)


def test_dropping_a_resource_limit_recreates_because_the_engine_cannot_clear_it() -> None:
    async def scenario() -> None:
        engine = MemoryEngine(registry={OLD})
        await converge(engine, {1: app(1, service(1, "web", OLD, memory_bytes=64 << 20))})
        (before,) = engine.containers
        await converge(engine, {1: app(1, service(1, "web", OLD))})
        (after,) = engine.containers
        assert after != before and engine.containers[after].memory_bytes is None

    asyncio.run(scenario())


def test_hand_over_dropping_a_resource_limit_replaces_the_container_it_cannot_run_twice() -> None:
    """Same config hash, so the new container would have the old one's name: Docker names are
    unique, so hand-over falls back to download-then-kill instead of "starting" the old one on
    every pass (found by the convergence property)."""

    async def scenario() -> None:
        engine = MemoryEngine(registry={OLD})
        limited = service(1, "web", OLD, strategy="hand-over", memory_bytes=64 << 20)
        await converge(engine, {1: app(1, limited)})
        (before,) = engine.containers
        engine.log.clear()
        batches = await converge(engine, {1: app(1, replace(limited, memory_bytes=None))}, 6)
        (after,) = engine.containers
        assert after != before and engine.containers[after].memory_bytes is None
        assert engine.log == [
            f"stop web {OLD}",
            f"remove web {OLD}",
            f"create web {OLD}",
            f"start web {OLD}",
        ]
        assert len(batches) <= 4

    asyncio.run(scenario())


def test_changed_fields_names_what_made_a_service_differ() -> None:
    old = service(1, "web", OLD, environment=(("A", "1"),))
    new = replace(old, image=NEW, environment=(("A", "2"),), restart="no")
    assert changed_fields(old, new) == ["image", "environment", "restart"]

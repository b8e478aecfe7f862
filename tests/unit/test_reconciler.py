"""Reconciler failure handling with a controlled clock: backoff, give-up, crash loops."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import replace

import pytest
from iotistic_agent.engine.memory import MemoryEngine
from iotistic_agent.orchestrator.model import AppSpec, FailureRecord, ServiceKey, ServiceSpec
from iotistic_agent.orchestrator.reconciler import Reconciler
from planner_support import app, service

GOOD, OTHER, BAD = "reg/img:v1", "reg/other:v1", "reg/img:missing"


class Targets:
    def __init__(self, target: Mapping[int, AppSpec], known: bool = True) -> None:
        self.target = target
        self.known = known

    def current_target(self) -> Mapping[int, AppSpec]:
        return self.target

    def spec_by_hash(self, config_hash: str) -> ServiceSpec | None:
        return None


class DictStore:
    def __init__(self) -> None:
        self.records: dict[ServiceKey, FailureRecord] = {}

    def load_failures(self) -> dict[ServiceKey, FailureRecord]:
        return dict(self.records)

    def put_failure(self, key: ServiceKey, record: FailureRecord) -> None:
        self.records[key] = record

    def delete_failure(self, key: ServiceKey) -> None:
        self.records.pop(key, None)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def three_services(bad_image: str = BAD) -> dict[int, AppSpec]:
    return {
        1001: app(
            1001,
            service(1001, "web", GOOD),
            service(1001, "worker", OTHER),
            service(1001, "broken", bad_image),
        )
    }


def make(
    target: Mapping[int, AppSpec],
    engine: MemoryEngine | None = None,
    store: DictStore | None = None,
):  # type: ignore[no-untyped-def]
    engine = engine or MemoryEngine(registry={GOOD, OTHER})
    clock = Clock()
    engine.clock = clock.now
    targets = Targets(target)
    store = store or DictStore()
    return engine, clock, targets, store, Reconciler(engine, targets, store, clock=clock)


def running(engine: MemoryEngine) -> set[str]:
    return {c.service_name for c in engine.containers.values() if c.status == "running"}


async def test_a_missing_image_backs_off_while_the_other_services_run() -> None:
    engine, clock, _, store, rec = make(three_services())
    outcome = await rec.reconcile()
    assert running(engine) == {"web", "worker"}
    record = rec.failures[(1001, "broken")]
    assert (record.reason, record.retry_count, record.next_retry_at) == (
        "ImagePullBackOff",
        1,
        1010.0,
    )
    assert "manifest unknown" in record.message
    assert outcome.retry_at == 1010.0 and not outcome.settled
    assert store.records[(1001, "broken")] == record

    pulls = engine.log.count(f"pull {BAD}")
    clock.now = 1005.0
    await rec.reconcile()
    assert engine.log.count(f"pull {BAD}") == pulls  # still backing off

    clock.now = 1010.0
    await rec.reconcile()
    record = rec.failures[(1001, "broken")]
    assert (record.retry_count, record.next_retry_at) == (2, 1030.0)


async def test_backoff_doubles_to_five_minutes_and_gives_up_after_ten_failures() -> None:
    engine, clock, _, _, rec = make(three_services())
    delays = []
    for _ in range(10):
        await rec.reconcile()
        record = rec.failures[(1001, "broken")]
        delays.append(record.next_retry_at - clock.now)
        clock.now = record.next_retry_at
    assert delays[:6] == [10, 20, 40, 80, 160, 300]
    assert record.gave_up and record.display_reason == "ErrImagePull"
    pulls = engine.log.count(f"pull {BAD}")
    clock.now += 10_000
    outcome = await rec.reconcile()
    assert engine.log.count(f"pull {BAD}") == pulls
    assert outcome.settled


async def test_fixing_the_image_tag_converges_and_clears_the_failure() -> None:
    engine, _, targets, store, rec = make(three_services())
    await rec.reconcile()
    targets.target = three_services(bad_image=GOOD)
    outcome = await rec.reconcile()
    assert outcome.settled
    assert running(engine) == {"web", "worker", "broken"}
    assert rec.failures == {} and store.records == {}


async def test_a_container_that_cannot_start_reports_start_failure() -> None:
    engine = MemoryEngine(registry={GOOD}, unstartable={GOOD})
    _, _, _, _, rec = make({1: app(1, service(1, "web", GOOD))}, engine)
    await rec.reconcile()
    record = rec.failures[(1, "web")]
    assert record.reason == "StartFailure" and record.retry_count == 1


async def test_a_crashing_container_goes_into_crash_loop_backoff_and_is_restarted_later() -> None:
    engine, clock, _, _, rec = make({1: app(1, service(1, "web", GOOD))})
    await rec.reconcile()
    await rec.reconcile()  # observes it running
    (cid,) = engine.containers
    engine.containers[cid] = replace(engine.containers[cid], status="exited", exit_code=3)
    await rec.reconcile()
    record = rec.failures[(1, "web")]
    assert (record.reason, record.retry_count) == ("CrashLoopBackOff", 1)
    assert "code 3" in record.message
    assert engine.containers[cid].status == "exited"  # waits out the backoff

    clock.now = engine.clock = record.next_retry_at
    await rec.reconcile()
    assert engine.containers[cid].status == "running"
    assert rec.failures[(1, "web")].retry_count == 1  # the same exit is never counted twice

    clock.now += 60  # up long enough: the crash history is forgiven
    await rec.reconcile()
    assert (1, "web") not in rec.failures


async def test_failure_records_survive_a_restart_of_the_reconciler() -> None:
    engine, clock, targets, store, rec = make(three_services())
    await rec.reconcile()
    restarted = Reconciler(engine, targets, store, clock=clock)
    assert restarted.failures[(1001, "broken")].retry_count == 1


@pytest.mark.parametrize("state", ["running", "paused", "stopped"])
async def test_every_state_transition_converges(state: str) -> None:
    for start in ("running", "paused", "stopped"):
        engine, _, targets, _, rec = make({1: app(1, service(1, "web", GOOD, state=start))})
        await rec.reconcile()
        before = set(engine.containers)
        targets.target = {1: app(1, service(1, "web", GOOD, state=state))}
        assert (await rec.reconcile()).settled
        statuses = {c.status for c in engine.containers.values()}
        expected = {"running": {"running"}, "paused": {"paused"}, "stopped": {"exited"}}[state]
        if start == "stopped" and state == "stopped":
            expected = set()
        assert statuses == expected, (start, state)
        if before and set(engine.containers):
            assert set(engine.containers) == before  # same container, same id


async def test_an_exit_before_any_snapshot_saw_the_container_running_still_counts() -> None:
    engine, _, _, _, rec = make({1: app(1, service(1, "web", GOOD))})
    await rec.reconcile()
    (cid,) = engine.containers
    engine.containers[cid] = replace(engine.containers[cid], status="exited", exit_code=1)
    await rec.reconcile()
    assert rec.failures[(1, "web")].reason == "CrashLoopBackOff"


async def test_a_container_is_stopped_then_handed_to_before_remove_then_removed() -> None:
    engine, _, targets, _, rec = make({1001: app(1001, service(1001, "web", GOOD))})
    await rec.reconcile()
    [web] = engine.containers.values()
    seen: list[tuple[str, str | None]] = []

    async def before_remove(container_id: str) -> None:
        still = engine.containers.get(container_id)
        seen.append((container_id, None if still is None else still.status))
        engine.log.append("before_remove")

    rec.before_remove = before_remove
    targets.target = {}  # the app goes away: its container is killed
    await rec.reconcile()
    assert seen == [(web.id, "exited")]  # stopped, not yet removed
    order = [
        entry for entry in engine.log if entry.split()[0] in ("stop", "before_remove", "remove")
    ]
    assert order[-3:] == ["stop web " + GOOD, "before_remove", "remove web " + GOOD]


class BarrierStops(MemoryEngine):
    """Each stop waits until `parties` stops are under way: it only returns when they run
    concurrently (sequential stops would wait forever, and the test's timeout fails)."""

    def __init__(self, parties: int, **fields: object) -> None:
        super().__init__(**fields)  # type: ignore[arg-type]
        self.barrier = asyncio.Barrier(parties)
        self.timeouts: list[float] = []

    async def stop_container(self, container_id: str, timeout_s: float) -> None:
        if self.containers[container_id].status == "running":
            self.timeouts.append(timeout_s)
            await self.barrier.wait()
        await super().stop_container(container_id, timeout_s)


def three_independent(image: str, grace: float = 3.0) -> dict[int, AppSpec]:
    return {1: app(1, *(service(1, name, image, stop_grace_s=grace) for name in ("a", "b", "c")))}


async def test_the_kills_of_a_removed_app_run_concurrently_with_their_grace_period() -> None:
    engine = BarrierStops(3, registry={GOOD})
    _, _, targets, _, rec = make(three_independent(GOOD), engine)
    await rec.reconcile()
    targets.target = {}
    async with asyncio.timeout(5):
        assert (await rec.reconcile()).settled
    assert engine.containers == {}
    assert engine.timeouts == [3.0, 3.0, 3.0]


async def test_an_update_of_several_services_stops_the_old_containers_concurrently() -> None:
    engine = BarrierStops(3, registry={GOOD, OTHER})
    _, _, targets, _, rec = make(three_independent(GOOD), engine)
    await rec.reconcile()
    targets.target = three_independent(OTHER)
    async with asyncio.timeout(5):
        assert (await rec.reconcile()).settled
    assert {c.image for c in engine.containers.values()} == {OTHER}
    assert running(engine) == {"a", "b", "c"}

"""The level-triggered reconcile loop: observe, plan the next batch, execute, repeat.

A pass runs on every target change (wake) and every interval, and earlier when a backoff
expires. Failures of one service are recorded as data and never stop the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Protocol

from ..engine.protocol import (
    BeforeRemove,
    Engine,
    EngineError,
    EngineUnavailable,
    ImagePullError,
    StartError,
)
from .apply import apply_step
from .backoff import record_failure
from .model import (
    AppSpec,
    EngineSnapshot,
    FailureReason,
    FailureRecord,
    PlanContext,
    ServiceKey,
    ServiceSpec,
    changed_fields,
)
from .observe import Cleared, Failed, FailureEvent, Observations, observe
from .planner import plan
from .steps import (
    FetchImage,
    Kill,
    Noop,
    ReleaseLock,
    RemoveImage,
    RemoveNetwork,
    RemoveVolume,
    Start,
    Step,
    Stop,
    TakeLock,
)

log = logging.getLogger("iotistic.reconciler")

MAX_BATCHES_PER_PASS = 50
MAX_CONCURRENT_STARTS = 4  # the engine serialises much of the work; more only queues there
# Stops mostly wait out grace periods, so many run at once; the bound stays well under the
# engine client's connection pool (aiohttp: 100), which log followers share.
MAX_CONCURRENT_CHANGES = 32


class TargetSource(Protocol):
    @property
    def known(self) -> bool:
        """False while no target was ever stored: nothing is planned (nor removed) then."""
        ...

    def current_target(self) -> Mapping[int, AppSpec]: ...

    def spec_by_hash(self, config_hash: str) -> ServiceSpec | None: ...


class FailureStore(Protocol):
    def load_failures(self) -> dict[ServiceKey, FailureRecord]: ...

    def put_failure(self, key: ServiceKey, record: FailureRecord) -> None: ...

    def delete_failure(self, key: ServiceKey) -> None: ...


@dataclass(frozen=True)
class PassOutcome:
    settled: bool  # nothing left to do (converged, or failed services have given up)
    batches: int
    retry_at: float | None = None  # earliest backoff expiry worth waking up for
    error: str | None = None


class Reconciler:
    def __init__(
        self,
        engine: Engine,
        targets: TargetSource,
        failures: FailureStore,
        *,
        interval_s: float = 30.0,
        clock: Callable[[], float] = time.time,
        before_remove: BeforeRemove | None = None,
    ) -> None:
        self._engine = engine
        self._targets = targets
        self._store = failures
        self._failures = failures.load_failures()
        self._interval_s = interval_s
        self._clock = clock
        self._locks: set[int] = set()
        self._wake = asyncio.Event()
        # Passes and manual operations (restart, purge) never interleave.
        self._pass_lock = asyncio.Lock()
        self._observations = Observations()
        self._waiting_logged = False
        self.last_snapshot: EngineSnapshot | None = None
        # When it was asked for (time.monotonic): readers that accept a recent view use it.
        self.last_snapshot_at: float | None = None
        # Reads a container's last log lines before it is removed (while log shipping runs).
        self.before_remove = before_remove
        self.engine_error: str | None = None

    @property
    def failures(self) -> Mapping[ServiceKey, FailureRecord]:
        return self._failures

    def wake(self) -> None:
        self._wake.set()

    def set_interval(self, interval_s: float) -> None:
        self._interval_s = interval_s
        self.wake()

    @asynccontextmanager
    async def exclusive(self) -> AsyncIterator[None]:
        """Hold off reconciliation while an operator's action changes the engine."""
        async with self._pass_lock:
            yield
        self.wake()

    def forget_failures(self, keys: Iterable[ServiceKey]) -> None:
        """An explicit start or restart gives failed services a fresh start."""
        for key in keys:
            self._clear(key, "fresh start asked for")

    async def run(self) -> None:
        while True:
            self._wake.clear()
            outcome = await self.reconcile()
            timeout = self._interval_s
            if outcome.retry_at is not None:
                timeout = max(0.05, min(timeout, outcome.retry_at - self._clock()))
            elif not outcome.settled and outcome.error is None:
                timeout = min(timeout, 1.0)  # waiting on a dependency or hand-over: look again soon
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)

    async def reconcile(self) -> PassOutcome:
        async with self._pass_lock:
            return await self._guarded_pass()

    async def _guarded_pass(self) -> PassOutcome:
        try:
            outcome = await self._reconcile()
            self.engine_error = None
        except EngineUnavailable as exc:
            self.engine_error = str(exc)
            log.error("container engine unavailable: %s", exc)
            outcome = PassOutcome(settled=False, batches=0, error=str(exc))
        except Exception as exc:  # a bug must not kill the loop: log it and try again later
            log.exception("reconciliation pass failed")
            outcome = PassOutcome(settled=False, batches=0, error=str(exc))
        return outcome

    async def _reconcile(self) -> PassOutcome:
        for batch in range(1, MAX_BATCHES_PER_PASS + 1):
            target = self._targets.current_target()
            asked_at = time.monotonic()
            snapshot = await self._engine.snapshot()
            self.last_snapshot, self.last_snapshot_at = snapshot, asked_at
            if not self._targets.known:
                # An empty target would remove every container of this device's: wait for one.
                if not self._waiting_logged:
                    log.info(
                        "no target state stored yet: nothing is created or removed until one is"
                    )
                    self._waiting_logged = True
                return PassOutcome(settled=True, batches=batch)
            self._observe(snapshot, target)
            ctx = PlanContext(
                now=self._clock(),
                failures=self._failures,
                locks=frozenset(self._locks),
                agent_stopped=self._observations.agent_stopped,
            )
            steps = plan(snapshot, target, ctx)
            if not steps:
                return PassOutcome(settled=True, batches=batch)
            actionable = [s for s in steps if not isinstance(s, Noop)]
            if not actionable:
                retries = [s.retry_at for s in steps if isinstance(s, Noop) and s.retry_at]
                return PassOutcome(False, batch, retry_at=min(retries) if retries else None)
            if not await self._execute(actionable):
                # Wait for the interval (or a backoff) rather than hammer a failing engine.
                error = "a step failed, see the log"
                return PassOutcome(False, batch, retry_at=self._earliest_retry(), error=error)
        return PassOutcome(False, MAX_BATCHES_PER_PASS, error="no convergence within one pass")

    def _earliest_retry(self) -> float | None:
        times = [f.next_retry_at for f in self._failures.values() if not f.gave_up]
        return min(times) if times else None

    async def _execute(self, steps: Sequence[Step]) -> bool:
        """Run one batch in four phases, each concurrent inside: pulls; changes to containers
        (stops, kills, pauses, updates: a container's own steps stay in order) and network or
        volume creation; removal of images, networks and volumes (after the kills that free
        them); then the starts (the planner never starts a service in the batch that frees
        what it needs). The planner already ordered what must wait (dependants stop first).
        False when a step failed in a way that is not recorded per service (the pass then
        ends early)."""
        phases: list[list[Step]] = [[], [], [], []]
        for step in steps:
            phases[_phase(step)].append(step)
        fetches, changes, removals, starts = phases
        ok = await _all(self._run_step(s) for s in fetches)
        changes_limit = asyncio.Semaphore(MAX_CONCURRENT_CHANGES)
        ok = (
            await _all(self._run_in_order(g, changes_limit) for g in _per_container(changes)) and ok
        )
        ok = await _all(self._run_step(s) for s in removals) and ok
        starts_limit = asyncio.Semaphore(MAX_CONCURRENT_STARTS)
        return await _all(self._run_in_order([s], starts_limit) for s in starts) and ok

    async def _run_in_order(self, steps: Sequence[Step], limit: asyncio.Semaphore) -> bool:
        async with limit:
            ok = True
            for step in steps:
                ok = await self._run_step(step) and ok
            return ok

    async def _run_step(self, step: Step) -> bool:
        if isinstance(step, TakeLock):
            self._locks.add(step.app_id)
            return True
        if isinstance(step, ReleaseLock):
            self._locks.discard(step.app_id)
            return True
        log.info("step %s%s", _describe(step), self._replacement_reason(step))
        try:
            started = await apply_step(self._engine, step, self.before_remove)
        except EngineUnavailable:
            raise
        except ImagePullError as exc:
            assert isinstance(step, FetchImage)
            for key in step.services:
                self._fail(key, "ImagePullBackOff", str(exc))
            return True
        except StartError as exc:
            assert isinstance(step, Start)
            self._fail(step.service.key, "StartFailure", str(exc))
            return True
        except EngineError as exc:
            log.warning("step failed: %s: %s", _describe(step), exc)
            return False
        if started is not None:
            self._observations = self._observations.started(started)
        elif isinstance(step, Stop):
            self._observations = self._observations.stopped(step.container_id)
        self._succeeded(step)
        return True

    def _replacement_reason(self, step: Step) -> str:
        """For a container being replaced, name the fields that changed (a replace loop is
        a bug, and this is how one is found)."""
        if not isinstance(step, Kill) or self.last_snapshot is None:
            return ""
        old = next((c for c in self.last_snapshot.containers if c.id == step.container_id), None)
        app = self._targets.current_target().get(step.service[0])
        new = app.service(step.service[1]) if app else None
        if old is None or new is None:
            return " (no longer in the target)"
        previous = self._targets.spec_by_hash(old.config_hash)
        if previous is None or previous.config_hash == new.config_hash:
            return ""
        return f" (replacing: {', '.join(changed_fields(previous, new)) or 'config'} changed)"

    def _hash_of(self, key: ServiceKey) -> str:
        app = self._targets.current_target().get(key[0])
        spec = app.service(key[1]) if app else None
        return spec.config_hash if spec else ""

    def _fail(self, key: ServiceKey, reason: FailureReason, message: str) -> None:
        now = self._clock()
        record = record_failure(self._failures.get(key), reason, message, now, self._hash_of(key))
        self._record(Failed(key, record))

    def _clear(self, key: ServiceKey, why: str) -> None:
        if key in self._failures:
            self._record(Cleared(key, why))

    def _record(self, event: FailureEvent) -> None:
        """Keep a failure event in memory and in the store, and log it."""
        key = event.key
        if isinstance(event, Cleared):
            del self._failures[key]
            self._store.delete_failure(key)
            log.info("service %s/%s: failure cleared (%s)", key[0], key[1], event.why)
            return
        record = self._failures[key] = event.record
        self._store.put_failure(key, record)
        log.warning(
            "service %s/%s %s (failure %d%s): %s",
            key[0],
            key[1],
            record.display_reason,
            record.retry_count,
            ", giving up"
            if record.gave_up
            else f", retry in {record.next_retry_at - record.last_failure_at:.0f}s",
            record.message,
        )

    def _succeeded(self, step: Step) -> None:
        if isinstance(step, FetchImage):
            for key in step.services:
                record = self._failures.get(key)
                if record is not None and record.reason == "ImagePullBackOff":
                    self._clear(key, "image pulled")
        elif isinstance(step, Start):
            record = self._failures.get(step.service.key)
            if record is not None and record.reason != "CrashLoopBackOff":
                self._clear(step.service.key, "started")

    def _observe(self, snapshot: EngineSnapshot, target: Mapping[int, AppSpec]) -> None:
        """Crashes, recoveries and stale failures, from what the engine shows (observe.py)."""
        self._observations, events = observe(
            self._observations, self._failures, snapshot, target, self._clock()
        )
        for event in events:
            self._record(event)


def _phase(step: Step) -> int:
    if isinstance(step, FetchImage):
        return 0
    if isinstance(step, RemoveImage | RemoveNetwork | RemoveVolume):
        return 2
    if isinstance(step, Start):
        return 3
    return 1


def _per_container(steps: Sequence[Step]) -> list[list[Step]]:
    """Steps grouped by the container they act on, in batch order; others alone."""
    groups: dict[object, list[Step]] = {}
    for index, step in enumerate(steps):
        key = getattr(step, "container_id", index)
        groups.setdefault(key, []).append(step)
    return list(groups.values())


async def _all(runs: Iterable[Awaitable[bool]]) -> bool:
    """Await every run concurrently; each finishes before the first error is raised (no
    step is left running behind the pass)."""
    results = await asyncio.gather(*runs, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return all(results)


def _describe(step: Step) -> str:
    name = type(step).__name__
    if isinstance(step, Start):
        return f"{name} {step.service.app_id}/{step.service.service_name} ({step.service.image})"
    fields = ", ".join(f"{k}={v}" for k, v in vars(step).items() if k != "service")
    return f"{name}({fields})"

"""Stopping many services at once: the reconciler's concurrent batch against running the same
planned steps one after another (what the agent did before), in the same run.

Run (as root, after scripts/bootstrap.sh, with DOCKER_HOST set to the engine to use):
.venv/bin/python bench/bench_stops.py [--services 5] [--grace 3]

Every service runs busybox `sleep` as PID 1, which ignores SIGTERM, so each stop lasts its
whole grace period (`stop_grace_period`) before the SIGKILL. Measured, for both ways of
executing the plan:
- update: a new image for all N services (images already local) -> all running again,
- removal: the app leaves the target -> no container left.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from iotistic_agent.engine.docker import DockerEngine  # noqa: E402
from iotistic_agent.orchestrator.apply import apply_step  # noqa: E402
from iotistic_agent.orchestrator.model import (  # noqa: E402
    AppSpec,
    FailureRecord,
    PlanContext,
    ServiceKey,
    ServiceSpec,
    config_hash,
)
from iotistic_agent.orchestrator.planner import plan  # noqa: E402
from iotistic_agent.orchestrator.reconciler import Reconciler  # noqa: E402
from iotistic_agent.orchestrator.steps import Noop, ReleaseLock, TakeLock  # noqa: E402

from tests.integration import dockerkit  # noqa: E402

APP_ID = 1001


class Target:
    """The reconciler's target source and failure store, in memory."""

    known = True

    def __init__(self) -> None:
        self.apps: Mapping[int, AppSpec] = {}

    def current_target(self) -> Mapping[int, AppSpec]:
        return self.apps

    def spec_by_hash(self, config_hash: str) -> ServiceSpec | None:
        return None

    def load_failures(self) -> dict[ServiceKey, FailureRecord]:
        return {}

    def put_failure(self, key: ServiceKey, record: FailureRecord) -> None:
        raise RuntimeError(f"{key} failed: {record.message}")

    def delete_failure(self, key: ServiceKey) -> None:
        pass


def app_of(image: str, count: int, grace_s: float) -> dict[int, AppSpec]:
    services = []
    for i in range(count):
        spec = ServiceSpec(
            app_id=APP_ID,
            app_name="bench",
            service_id=i + 1,
            service_name=f"s{i}",
            image=image,
            command=("sleep", "3600"),  # PID 1 without a SIGTERM handler
            stop_grace_s=grace_s,
            networks=((f"{APP_ID}_default", ()),),
        )
        services.append(replace(spec, config_hash=config_hash(spec)))
    return {APP_ID: AppSpec(APP_ID, "bench", tuple(services), (f"{APP_ID}_default",), ())}


async def one_after_another(engine: DockerEngine, target: Mapping[int, AppSpec]) -> None:
    """The baseline: the same planner, each batch's steps run in order (the old executor)."""
    locks: set[int] = set()
    for _ in range(50):
        steps = plan(
            await engine.snapshot(), target, PlanContext(time.time(), locks=frozenset(locks))
        )
        if not [s for s in steps if not isinstance(s, Noop)]:
            return
        for step in steps:
            if isinstance(step, TakeLock):
                locks.add(step.app_id)
            elif isinstance(step, ReleaseLock):
                locks.discard(step.app_id)
            else:
                await apply_step(engine, step)
    raise RuntimeError("the baseline did not converge")


async def timed(
    engine: DockerEngine, source: Target, sequential: bool, apps: Mapping[int, AppSpec]
) -> float:
    source.apps = apps
    started = time.perf_counter()
    if sequential:
        await one_after_another(engine, apps)
    else:
        outcome = await Reconciler(engine, source, source).reconcile()
        if not outcome.settled:
            raise RuntimeError(f"the reconciler did not settle: {outcome}")
    return time.perf_counter() - started


async def measure(v1: str, v2: str, count: int, grace_s: float) -> dict[str, dict[str, float]]:
    results: dict[str, dict[str, float]] = {"update": {}, "removal": {}}
    async with DockerEngine(device_uuid="bench-stops") as engine:
        for image in (v1, v2):
            await engine.pull_image(image)
        source = Target()
        for label, sequential in (("one after another", True), ("concurrent batch", False)):
            await timed(engine, source, False, app_of(v1, count, grace_s))  # setup, not timed
            results["update"][label] = await timed(
                engine, source, sequential, app_of(v2, count, grace_s)
            )
            results["removal"][label] = await timed(engine, source, sequential, {})
    return results


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--services", type=int, default=5)
    parser.add_argument("--grace", type=float, default=3.0)
    args = parser.parse_args()
    dockerkit.remove_managed_objects()
    with tempfile.TemporaryDirectory() as tmp, dockerkit.local_test_images(Path(tmp)) as images:
        try:
            results = asyncio.run(measure(images.v1, images.v2, args.services, args.grace))
        finally:
            dockerkit.remove_managed_objects()
    print(f"{args.services} services ignoring SIGTERM, stop_grace_period {args.grace:g} s")
    for case, times in results.items():
        base, new = times["one after another"], times["concurrent batch"]
        print(f"{case}: one after another {base:.2f} s, concurrent {new:.2f} s ({new / base:.2f}x)")
    max_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"max RSS of this process: {max_rss_mb:.1f} MB")


if __name__ == "__main__":
    main()

"""Time one planner pass over 100 services, against a same-run baseline.

Run: .venv/bin/python bench/bench_planner.py
The baseline is serialising the same target to JSON (work every agent does anyway), so the
ratio stays meaningful on a noisy machine.
"""

from __future__ import annotations

import asyncio
import json
import resource
import statistics
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "unit"))

from iotistic_agent.engine.memory import MemoryEngine
from iotistic_agent.orchestrator.model import AppSpec, Mount, PlanContext
from iotistic_agent.orchestrator.planner import plan
from planner_support import app, converge, service

SERVICES = 100
APPS = 10
ROUNDS = 200


def big_target(image: str) -> dict[int, AppSpec]:
    target = {}
    for a in range(APPS):
        app_id = 1000 + a
        services = [
            service(
                app_id,
                f"svc{s}",
                image,
                environment=(("INDEX", str(s)),),
                mounts=(Mount("volume", f"{app_id}_data{s}", "/data", False),),
                networks=((f"{app_id}_default", ()),),
            )
            for s in range(SERVICES // APPS)
        ]
        target[app_id] = app(app_id, *services)
    return target


def timed(fn: object, rounds: int = ROUNDS) -> float:
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        fn()  # type: ignore[operator]
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


async def main() -> None:
    target = big_target("reg/img:v1")
    engine = MemoryEngine(registry={"reg/img:v1", "reg/img:v2"})
    fresh = await engine.snapshot()
    await converge(engine, target)
    converged = await engine.snapshot()
    updated = big_target("reg/img:v2")
    ctx = PlanContext(now=0.0)

    baseline = timed(lambda: json.dumps([asdict(s) for a in target.values() for s in a.services]))
    results = {
        "fresh device (100 services to create)": timed(lambda: plan(fresh, target, ctx)),
        "converged (nothing to do)": timed(lambda: plan(converged, target, ctx)),
        "image update of all 100": timed(lambda: plan(converged, updated, replace(ctx))),
    }
    print(f"baseline json.dumps of the target: {baseline * 1e3:.3f} ms")
    for name, seconds in results.items():
        print(f"planner pass, {name}: {seconds * 1e3:.3f} ms ({seconds / baseline:.2f}x baseline)")
    max_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"max RSS of this process: {max_rss_mb:.1f} MB")


if __name__ == "__main__":
    asyncio.run(main())

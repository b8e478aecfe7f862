"""Helpers for driving the pure planner against the in-memory engine."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from iotistic_agent.engine.memory import MemoryEngine
from iotistic_agent.orchestrator.apply import apply_step
from iotistic_agent.orchestrator.model import AppSpec, PlanContext, ServiceSpec, config_hash
from iotistic_agent.orchestrator.planner import plan
from iotistic_agent.orchestrator.steps import Noop, ReleaseLock, Step, Stop, TakeLock


def service(app_id: int, name: str, image: str = "reg/img:v1", **fields: object) -> ServiceSpec:
    spec = ServiceSpec(
        app_id=app_id,
        app_name=f"app{app_id}",
        service_id=0,
        service_name=name,
        image=image,
        **fields,  # type: ignore[arg-type]
    )
    return replace(spec, config_hash=config_hash(spec))


def app(app_id: int, *services: ServiceSpec) -> AppSpec:
    networks = sorted({n for s in services for n in s.network_names})
    volumes = sorted({v for s in services for v in s.volume_names})
    return AppSpec(app_id, f"app{app_id}", tuple(services), tuple(networks), tuple(volumes))


@dataclass
class AgentMemory:
    """What the reconciler remembers between passes: locks held, containers it stopped."""

    locks: set[int] = field(default_factory=set)
    stopped: set[str] = field(default_factory=set)

    def context(self, now: float) -> PlanContext:
        return PlanContext(
            now=now, locks=frozenset(self.locks), agent_stopped=frozenset(self.stopped)
        )


async def converge(
    engine: MemoryEngine,
    target: Mapping[int, AppSpec],
    max_passes: int = 30,
    memory: AgentMemory | None = None,
) -> list[list[Step]]:
    """Plan and apply until the planner returns nothing; returns every batch applied."""
    memory = memory or AgentMemory()
    batches: list[list[Step]] = []
    for _ in range(max_passes):
        steps = plan(await engine.snapshot(), target, memory.context(engine.clock))
        if not steps:
            return batches
        batches.append(steps)
        await apply_batch(engine, steps, memory)
    raise AssertionError(f"no convergence within {max_passes} passes; last batch: {batches[-1]}")


async def apply_batch(engine: MemoryEngine, steps: list[Step], memory: AgentMemory) -> None:
    """Apply one planned batch in order, as the reconciler would, then let a second pass."""
    for step in steps:
        if isinstance(step, TakeLock):
            memory.locks.add(step.app_id)
        elif isinstance(step, ReleaseLock):
            memory.locks.discard(step.app_id)
        elif not isinstance(step, Noop):
            started = await apply_step(engine, step)
            if started is not None:
                memory.stopped.discard(started)
            elif isinstance(step, Stop):
                memory.stopped.add(step.container_id)
    engine.clock += 1.0

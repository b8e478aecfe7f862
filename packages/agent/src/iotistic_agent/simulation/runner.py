"""Runs the simulation scenarios as tasks that can be listed, started and stopped at runtime.

``sensor_data`` publishes BME688 readings through ``publish`` (the agent's MQTT connection)
every ``publishIntervalMs``; ``memory_leak`` grows real allocations every ``intervalMs``;
``anomaly_injection`` switches the ``AnomalyInjection`` that the metrics sampler applies.
A scenario that fails is logged and marked stopped; it never stops the agent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, Final, Literal

from iotistic_contracts.mqtt import SensorReading

from .config import SimulationConfig
from .injector import AnomalyInjection
from .memory_leak import MemoryLeak
from .sensors import Bme688Simulator

log = logging.getLogger("iotistic.simulation")

ScenarioName = Literal["sensor_data", "anomaly_injection", "memory_leak"]
SCENARIOS: Final[tuple[ScenarioName, ...]] = ("sensor_data", "anomaly_injection", "memory_leak")
Publish = Callable[[str, SensorReading], Awaitable[None]]


class UnknownScenario(KeyError):
    pass


class SimulationRunner:
    def __init__(
        self,
        config: SimulationConfig,
        publish: Publish,
        injection: AnomalyInjection | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._config = config
        self._publish = publish
        self._clock = clock
        self._tasks: dict[ScenarioName, asyncio.Task[None]] = {}
        self.sensors = Bme688Simulator(config.scenarios.sensor_data.pattern)
        self.injection = injection or AnomalyInjection(config.scenarios.anomaly_injection, clock)
        self.leak = MemoryLeak(config.scenarios.memory_leak)
        self.published = 0

    def start_configured(self) -> None:
        """At start-up with SIMULATION_MODE=true: every scenario the config enables."""
        if not self._config.enabled:
            return
        scenarios = self._config.scenarios
        for name in SCENARIOS:
            if getattr(scenarios, name).enabled:
                self.start(name)

    def _check(self, name: str) -> ScenarioName:
        for known in SCENARIOS:
            if known == name:
                return known
        raise UnknownScenario(name)

    def running(self, name: str) -> bool:
        scenario = self._check(name)
        if scenario == "anomaly_injection":
            return self.injection.running
        task = self._tasks.get(scenario)
        return task is not None and not task.done()

    def running_scenarios(self) -> list[str]:
        return [name for name in SCENARIOS if self.running(name)]

    def start(self, name: str) -> bool:
        """Start a scenario (with its configured settings); False if it already runs."""
        scenario = self._check(name)
        if self.running(scenario):
            return False
        log.warning("simulation scenario %s started: its data is simulated", scenario)
        if scenario == "anomaly_injection":
            self.injection.running = True
            return True
        loop = self._sensor_loop if scenario == "sensor_data" else self._leak_loop
        self._tasks[scenario] = asyncio.get_running_loop().create_task(
            self._guarded(scenario, loop), name=f"simulation-{scenario}"
        )
        return True

    async def stop(self, name: str) -> bool:
        scenario = self._check(name)
        if not self.running(scenario):
            return False
        if scenario == "anomaly_injection":
            self.injection.running = False
        else:
            task = self._tasks.pop(scenario)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if scenario == "memory_leak":
            self.leak.release()
        log.info("simulation scenario %s stopped", scenario)
        return True

    async def stop_all(self) -> None:
        for name in SCENARIOS:
            await self.stop(name)

    def status(self) -> list[dict[str, Any]]:
        scenarios = self._config.scenarios
        rows = []
        for name in SCENARIOS:
            settings = getattr(scenarios, name)
            row: dict[str, Any] = {
                "name": name,
                "running": self.running(name),
                "enabledAtStart": self._config.enabled and settings.enabled,
                "settings": settings.model_dump(exclude={"enabled"}),
            }
            if name == "sensor_data":
                row["published"] = self.published
            elif name == "anomaly_injection":
                row["injected"] = len(self.injection.injector.injected)
            else:
                row["leakedMb"] = round(self.leak.leaked_mb, 1)
            rows.append(row)
        return rows

    async def _guarded(self, name: str, loop: Callable[[], Awaitable[None]]) -> None:
        try:
            await loop()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("simulation scenario %s failed and stopped", name)

    async def _sensor_loop(self) -> None:
        interval_s = self._config.scenarios.sensor_data.publishIntervalMs / 1000
        while True:
            for metric, reading in self.sensors.readings(self._clock()):
                await self._publish(metric, reading)
                self.published += 1
            await asyncio.sleep(interval_s)

    async def _leak_loop(self) -> None:
        interval_s = self._config.scenarios.memory_leak.intervalMs / 1000
        while True:
            leaked = self.leak.step()
            log.debug("simulated memory leak at %.1f MB", leaked)
            await asyncio.sleep(interval_s)

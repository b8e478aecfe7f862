"""Simulation scenarios: configuration from the environment, BME688 data, anomaly injection
and the memory leak (pure, deterministic with a seed)."""

from __future__ import annotations

import itertools
import json
import statistics

import pytest
from iotistic_agent.simulation.config import (
    AnomalyInjectionScenario,
    MemoryLeakScenario,
    SimulationConfigError,
    simulation_config,
)
from iotistic_agent.simulation.injector import AnomalyInjector
from iotistic_agent.simulation.memory_leak import MemoryLeak
from iotistic_agent.simulation.sensors import CHANNELS, DAY_S, Bme688Simulator

SPEC_EXAMPLE = (
    '{"scenarios":{"anomaly_injection":{"enabled":true,"metrics":["cpu_temp","memory_percent"],'
    '"pattern":"spike","intervalMs":30000,"magnitude":3},"sensor_data":{"enabled":true,'
    '"pattern":"realistic","publishIntervalMs":10000}}}'
)


def test_the_specs_example_configuration() -> None:
    config = simulation_config({"SIMULATION_MODE": "true", "SIMULATION_CONFIG": SPEC_EXAMPLE})
    assert config.enabled
    assert config.scenarios.anomaly_injection.metrics == ["cpu_temp", "memory_percent"]
    assert config.scenarios.sensor_data.publishIntervalMs == 10000
    assert not config.scenarios.memory_leak.enabled


def test_off_by_default() -> None:
    assert simulation_config({}).enabled is False


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"SIMULATION_MODE": "maybe"}, "SIMULATION_MODE must be true or false"),
        ({"SIMULATION_CONFIG": "{"}, "SIMULATION_CONFIG"),
        (
            {"SIMULATION_CONFIG": json.dumps({"scenarios": {"sensor_data": {"pattern": "x"}}})},
            "scenarios.sensor_data.pattern",
        ),
        (
            {
                "SIMULATION_CONFIG": json.dumps(
                    {"scenarios": {"anomaly_injection": {"magnitude": 9}}}
                )
            },
            "scenarios.anomaly_injection.magnitude",
        ),
        ({"SIMULATION_CONFIG": json.dumps({"scenarios": {"unknown": {}}})}, "unknown"),
    ],
)
def test_bad_configuration_names_the_variable_and_field(env: dict[str, str], message: str) -> None:
    with pytest.raises(SimulationConfigError, match=message):
        simulation_config(env)


@pytest.mark.parametrize("pattern", ["realistic", "sine", "random"])
def test_bme688_values_stay_in_the_sensors_range_and_are_labelled(pattern: str) -> None:
    sim = Bme688Simulator(pattern, seed=1)  # type: ignore[arg-type]
    limits = {c.metric: (c.low, c.high) for c in CHANNELS}
    for second in range(0, int(DAY_S), 60):
        for metric, reading in sim.readings(1_700_000_000 + second):
            low, high = limits[metric]
            assert low <= reading.value <= high
            assert reading.sensor_id.startswith("sim_")
            assert reading.timestamp.endswith("Z")


def test_realistic_data_varies_like_a_sensor_and_sine_follows_the_day() -> None:
    realistic = Bme688Simulator("realistic", seed=2)
    temperatures = [realistic.values(1_700_000_000 + s)["temperature"] for s in range(3600)]
    steps = [abs(b - a) for a, b in itertools.pairwise(temperatures)]
    assert 0 < statistics.mean(steps) < 0.5  # noisy, but no jumps
    sine = Bme688Simulator("sine")
    assert sine.values(DAY_S / 4)["temperature"] == pytest.approx(22.0 + 2.5)
    assert sine.values(3 * DAY_S / 4)["temperature"] == pytest.approx(22.0 - 2.5)


def injector(pattern: str, **extra: object) -> AnomalyInjector:
    scenario = AnomalyInjectionScenario.model_validate(
        {"enabled": True, "metrics": ["cpu_temp"], "pattern": pattern, "intervalMs": 10000,
         "magnitude": 3, **extra}
    )  # fmt: skip
    return AnomalyInjector(scenario, seed=3)


@pytest.mark.parametrize(("pattern", "sign"), [("spike", 1), ("drop", -1)])
def test_spikes_and_drops_hit_one_sample_per_interval(pattern: str, sign: int) -> None:
    inject = injector(pattern)
    values = [inject.apply("cpu_temp", 50.0, t, scale=2.0) for t in range(30)]
    hit = [t for t, v in enumerate(values) if v != 50.0]
    assert hit == [0, 10, 20]
    assert all(values[t] == 50.0 + sign * 6.0 for t in hit)
    assert [i.at for i in inject.injected] == [0, 10, 20]


def test_a_drift_grows_to_the_magnitude_over_half_the_interval() -> None:
    inject = injector("drift")
    values = [inject.apply("cpu_temp", 50.0, t, scale=2.0) for t in range(10)]
    assert values[0] == 50.0 and values[5] == pytest.approx(56.0)
    assert values == sorted(values)
    assert [(i.kind, i.at) for i in inject.injected] == [("drift", 0)]


def test_untargeted_metrics_are_untouched() -> None:
    assert injector("spike").apply("memory_percent", 40.0, 0, 1.0) == 40.0


def test_the_memory_leak_grows_to_its_cap_and_is_released() -> None:
    leak = MemoryLeak(MemoryLeakScenario(enabled=True, leakRateMb=4, maxMb=10))
    assert [leak.step() for _ in range(4)] == [4, 8, 10, 10]
    leak.release()
    assert leak.leaked_mb == 0

"""SIMULATION_MODE and SIMULATION_CONFIG, with the spec's scenario names and fields."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..provisioning.errors import describe_invalid

SensorPattern = Literal["realistic", "sine", "random"]
InjectionPattern = Literal["spike", "drop", "drift", "random"]
IntervalMs = Annotated[int, Field(ge=100, le=86_400_000)]
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"", "0", "false", "no", "off"}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SensorDataScenario(_Strict):
    enabled: bool = False
    pattern: SensorPattern = "realistic"
    publishIntervalMs: IntervalMs = 10000


class AnomalyInjectionScenario(_Strict):
    enabled: bool = False
    metrics: list[Annotated[str, Field(min_length=1, max_length=64)]] = Field(
        default_factory=lambda: ["cpu_temp", "memory_percent"], max_length=32
    )
    pattern: InjectionPattern = "spike"
    intervalMs: IntervalMs = 30000
    # In units of the metric's standard deviation (the spec: 1-5).
    magnitude: Annotated[float, Field(ge=1, le=5)] = 3


class MemoryLeakScenario(_Strict):
    enabled: bool = False
    leakRateMb: Annotated[float, Field(gt=0, le=512)] = 5
    intervalMs: IntervalMs = 10000
    # Not in the spec: a simulated leak must never take the device down with it.
    maxMb: Annotated[float, Field(gt=0, le=2048)] = 100


class Scenarios(_Strict):
    sensor_data: SensorDataScenario = Field(default_factory=SensorDataScenario)
    anomaly_injection: AnomalyInjectionScenario = Field(default_factory=AnomalyInjectionScenario)
    memory_leak: MemoryLeakScenario = Field(default_factory=MemoryLeakScenario)


class SimulationConfig(_Strict):
    enabled: bool = False
    scenarios: Scenarios = Field(default_factory=Scenarios)


class SimulationConfigError(ValueError):
    pass


def simulation_config(env: Mapping[str, str]) -> SimulationConfig:
    """From SIMULATION_MODE (a boolean) and SIMULATION_CONFIG (JSON); every problem is a
    SimulationConfigError naming the variable and the field."""
    mode = env.get("SIMULATION_MODE", "").strip().lower()
    if mode not in _TRUE | _FALSE:
        raise SimulationConfigError("SIMULATION_MODE must be true or false")
    raw = env.get("SIMULATION_CONFIG", "").strip() or "{}"
    try:
        scenarios = SimulationConfig.model_validate_json(raw).scenarios
    except ValidationError as exc:
        raise SimulationConfigError(f"SIMULATION_CONFIG: {describe_invalid(exc)}") from None
    return SimulationConfig(enabled=mode in _TRUE, scenarios=scenarios)

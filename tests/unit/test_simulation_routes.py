"""Simulation over the Device API: list, start and stop scenarios of a real runner."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from aiohttp.test_utils import TestServer
from api_support import KEY, api_context
from iotistic_agent.device_api.app import create_app
from iotistic_agent.engine.memory import MemoryEngine
from iotistic_agent.simulation.config import simulation_config
from iotistic_agent.simulation.runner import SimulationRunner
from iotistic_contracts.mqtt import SensorReading

from tests.integration.waiting import wait_for_async

CONFIG = (
    '{"scenarios": {"sensor_data": {"enabled": true, "publishIntervalMs": 100},'
    ' "anomaly_injection": {"metrics": ["cpu_temp"], "intervalMs": 1000},'
    ' "memory_leak": {"leakRateMb": 2, "intervalMs": 100, "maxMb": 4}}}'
)


@dataclasses.dataclass
class Setup:
    client: httpx.AsyncClient
    runner: SimulationRunner
    published: list[tuple[str, SensorReading]]


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Setup]:
    published: list[tuple[str, SensorReading]] = []

    async def publish(metric: str, reading: SensorReading) -> None:
        published.append((metric, reading))

    config = simulation_config({"SIMULATION_MODE": "true", "SIMULATION_CONFIG": CONFIG})
    runner = SimulationRunner(config, publish)
    context = dataclasses.replace(api_context(tmp_path, MemoryEngine()), simulation=runner)
    async with TestServer(create_app(context, api_key=KEY), host="127.0.0.1") as server:
        headers = {"Authorization": f"Bearer {KEY}"}
        base = str(server.make_url(""))
        async with httpx.AsyncClient(base_url=base, headers=headers, timeout=10) as client:
            yield Setup(client, runner, published)
    await runner.stop_all()


async def scenario(api: Setup, name: str) -> dict[str, object]:
    rows = (await api.client.get("/v1/simulation")).json()["scenarios"]
    return next(row for row in rows if row["name"] == name)


async def test_sensor_data_publishes_labelled_bme688_readings_until_stopped(api: Setup) -> None:
    assert (await scenario(api, "sensor_data"))["running"] is False
    answer = await api.client.post("/v1/simulation/sensor_data/start")
    assert answer.json() == {"scenario": "sensor_data", "running": True, "changed": True}
    await wait_for_async(lambda: len(api.published) >= 8, 5, 0.01)  # two rounds of four channels
    metrics = {metric for metric, _ in api.published}
    assert metrics == {"temperature", "humidity", "pressure", "gas"}
    assert all(r.sensor_id.startswith("sim_") for _, r in api.published)
    again = await api.client.post("/v1/simulation/sensor_data/start")
    assert again.json()["changed"] is False
    stopped = await api.client.post("/v1/simulation/sensor_data/stop")
    assert stopped.json() == {"scenario": "sensor_data", "running": False, "changed": True}
    assert (await scenario(api, "sensor_data"))["running"] is False


async def test_the_memory_leak_grows_to_its_cap_and_stopping_frees_it(api: Setup) -> None:
    await api.client.post("/v1/simulation/memory_leak/start")
    await wait_for_async(lambda: api.runner.leak.leaked_mb >= 4, 5, 0.01)
    assert (await scenario(api, "memory_leak"))["leakedMb"] == 4
    await api.client.post("/v1/simulation/memory_leak/stop")
    assert api.runner.leak.leaked_mb == 0


async def test_anomaly_injection_changes_the_targeted_metric_while_it_runs(api: Setup) -> None:
    assert api.runner.injection.inject("cpu_temp", 50.0, scale=1.0) == 50.0
    await api.client.post("/v1/simulation/anomaly_injection/start")
    assert api.runner.injection.inject("cpu_temp", 50.0, scale=1.0) == 53.0  # spike of magnitude 3
    assert api.runner.injection.inject("memory_percent", 40.0, scale=1.0) == 40.0
    assert (await scenario(api, "anomaly_injection"))["injected"] == 1
    await api.client.post("/v1/simulation/anomaly_injection/stop")
    assert api.runner.injection.inject("cpu_temp", 50.0, scale=1.0) == 50.0


async def test_an_unknown_scenario_is_a_404(api: Setup) -> None:
    answer = await api.client.post("/v1/simulation/earthquake/start")
    assert answer.status_code == 404 and "sensor_data" in answer.text


async def test_start_configured_starts_what_the_config_enables(api: Setup) -> None:
    api.runner.start_configured()
    assert [r["name"] for r in (await api.client.get("/v1/simulation")).json()["scenarios"]
            if r["running"]] == ["sensor_data"]  # fmt: skip


async def test_running_scenarios_are_named_for_the_cloud_report(api: Setup) -> None:
    from iotistic_contracts.sync import DeviceReport

    assert api.runner.running_scenarios() == []
    await api.client.post("/v1/simulation/anomaly_injection/start")
    assert api.runner.running_scenarios() == ["anomaly_injection"]
    report = DeviceReport(
        sequence=1, reportedAt="2026-11-25T10:00:00Z", simulation=api.runner.running_scenarios()
    )
    assert report.simulation == ["anomaly_injection"]

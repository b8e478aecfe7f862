"""The device's anomaly path: system metric samples (with simulated injection) and sensor
readings go to the detector; detections land in SQLite and on GET /v1/anomalies; the
settings are checked as a whole and change at runtime."""

from __future__ import annotations

import dataclasses
import random
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from aiohttp.test_utils import TestServer
from api_support import KEY, api_context
from iotistic_agent.anomaly.pipeline import AnomalyPipeline
from iotistic_agent.anomaly.service import AnomalyDetectionService
from iotistic_agent.device_api.app import create_app
from iotistic_agent.engine.memory import MemoryEngine
from iotistic_agent.runtime_config import InvalidConfigValue
from iotistic_agent.settings import anomaly_config
from iotistic_agent.simulation.config import AnomalyInjectionScenario
from iotistic_agent.simulation.injector import AnomalyInjector
from iotistic_agent.store.anomaly_store import AnomalyStore
from iotistic_contracts.mqtt import SensorReading


def summary(rng: random.Random) -> dict[str, float]:
    return {
        "cpuPercent": 20 + rng.gauss(0, 2),
        "temperatureC": 50 + rng.gauss(0, 0.5),
        "memoryPercent": 40 + rng.gauss(0, 0.3),
        "storagePercent": 22.5,
    }


@pytest.fixture
async def setup(tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, AnomalyPipeline]]:
    context = api_context(tmp_path, MemoryEngine())
    service = AnomalyDetectionService(anomaly_config(context.config.settings))
    pipeline = AnomalyPipeline(service, AnomalyStore(context.database), tmp_path)
    app = create_app(dataclasses.replace(context, anomalies=pipeline), api_key=KEY)
    async with TestServer(app, host="127.0.0.1") as server:
        headers = {"Authorization": f"Bearer {KEY}"}
        base = str(server.make_url(""))
        async with httpx.AsyncClient(base_url=base, headers=headers, timeout=10) as client:
            yield client, pipeline


async def test_an_injected_temperature_spike_is_detected_stored_and_listed(
    setup: tuple[httpx.AsyncClient, AnomalyPipeline],
) -> None:
    client, pipeline = setup
    rng = random.Random(7)
    for _ in range(150):  # warm-up and a clean baseline: at most a 3-sigma "info" on noise
        assert all(d.severity == "info" for d in pipeline.feed_metrics(summary(rng)))
    injector = AnomalyInjector(
        AnomalyInjectionScenario(enabled=True, metrics=["cpu_temp"], pattern="spike", magnitude=5)
    )
    pipeline.inject = lambda metric, value, scale: injector.apply(metric, value, 0.0, scale)
    found = pipeline.feed_metrics(summary(rng))
    assert ("cpu_temp", "system") in [(d.metric, d.source) for d in found]
    spike = next(d for d in found if d.metric == "cpu_temp")
    assert spike.severity in ("warning", "critical")
    listed = (await client.get("/v1/anomalies?severity=" + spike.severity)).json()
    assert [a["metric"] for a in listed["anomalies"]] == ["cpu_temp"]
    assert listed["anomalies"][0] == spike.to_dict()
    assert listed["summary"]["total"] >= 1 and listed["monitoredSeries"] == 4


async def test_sensor_readings_are_detected_with_their_source(
    setup: tuple[httpx.AsyncClient, AnomalyPipeline],
) -> None:
    _, pipeline = setup
    rng = random.Random(3)

    def reading(second: int, value: float, sensor: str) -> SensorReading:
        stamp = f"2026-11-25T10:{second // 60:02d}:{second % 60:02d}Z"
        return SensorReading(timestamp=stamp, value=value, unit="C", sensor_id=sensor)

    for second in range(150):
        assert (
            pipeline.feed_reading("temperature", reading(second, 22 + rng.gauss(0, 0.1), "b1"))
            == []
        )
    found = pipeline.feed_reading("temperature", reading(151, 35.0, "b1"))
    assert [(d.source, d.metric, d.severity) for d in found] == [
        ("sensor", "temperature", "critical")
    ]
    simulated = pipeline.feed_reading("gas", reading(1, 120.0, "sim_bme688_001"))
    assert simulated == [] and pipeline.service.series_count == 2


async def test_bad_queries_are_clear_400s(setup: tuple[httpx.AsyncClient, AnomalyPipeline]) -> None:
    client, _ = setup
    for query in ("limit=0", "limit=abc", "severity=huge"):
        answer = await client.get(f"/v1/anomalies?{query}")
        assert answer.status_code == 400, query


def test_anomaly_settings_are_validated_and_change_at_runtime(tmp_path: Path) -> None:
    config = api_context(tmp_path, MemoryEngine()).config
    with pytest.raises(InvalidConfigValue, match="ANOMALY_WINDOW_SIZE"):
        config.set("ANOMALY_WINDOW_SIZE", "lots")
    with pytest.raises(InvalidConfigValue, match="low, medium or high"):
        config.set("ANOMALY_SENSITIVITY", "paranoid")
    service = AnomalyDetectionService(anomaly_config(config.settings))
    config.subscribe(lambda new: service.reconfigure(anomaly_config(new)))
    config.set("ANOMALY_SENSITIVITY", "high")
    config.set("ANOMALY_DETECTION_ENABLED", "false")
    assert service.config.sensitivity == "high" and service.config.enabled is False

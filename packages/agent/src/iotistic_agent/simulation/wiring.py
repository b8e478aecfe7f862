"""Connects the simulation to the agent: readings go out on the device's MQTT connection."""

from __future__ import annotations

from collections.abc import Callable

from iotistic_contracts.mqtt import SensorReading, sensor_topic

from ..mqtt.link import MqttLink
from .config import SimulationConfig
from .injector import AnomalyInjection
from .runner import SimulationRunner


def simulation_runner(
    config: SimulationConfig,
    mqtt: MqttLink,
    local: Callable[[str, SensorReading], object],
    injection: AnomalyInjection,
) -> SimulationRunner:
    async def publish(metric: str, reading: SensorReading) -> None:
        manager = mqtt.manager
        if manager is None or manager.credentials is None:
            # No broker (not provisioned): straight to the device's own consumers.
            local(metric, reading)
            return
        topic = sensor_topic(manager.credentials.uuid, metric)
        await manager.publish(topic, reading.model_dump_json(), qos=0)

    return SimulationRunner(config, publish, injection)

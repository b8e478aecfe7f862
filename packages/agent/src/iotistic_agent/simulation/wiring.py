"""Connects the simulation to the agent: readings go out on the device's MQTT connection."""

from __future__ import annotations

from iotistic_contracts.mqtt import SensorReading, sensor_topic

from ..mqtt.service import MqttService
from .config import SimulationConfig
from .runner import SimulationRunner


def simulation_runner(config: SimulationConfig, mqtt: MqttService) -> SimulationRunner:
    async def publish(metric: str, reading: SensorReading) -> None:
        manager = mqtt.manager
        if manager is None or manager.credentials is None:
            # No broker (not provisioned): the readings are generated and counted only.
            return
        topic = sensor_topic(manager.credentials.uuid, metric)
        await manager.publish(topic, reading.model_dump_json(), qos=0)

    return SimulationRunner(config, publish)

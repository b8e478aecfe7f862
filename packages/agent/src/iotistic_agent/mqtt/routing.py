"""What an incoming message means: the update trigger or a sensor reading (pure)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from iotistic_contracts.mqtt import SensorReading, update_topic
from pydantic import ValidationError

log = logging.getLogger("iotistic.mqtt")

OnUpdate = Callable[[], None]
OnReading = Callable[[SensorReading, str], None]  # (reading, metric)
MAX_REMEMBERED_BAD_TOPICS = 256


def sensor_filter(device_uuid: str) -> str:
    return f"sensor/{device_uuid}/#"


def subscriptions(device_uuid: str) -> list[tuple[str, int]]:
    """(topic filter, QoS) this device subscribes to after every (re)connect."""
    return [(update_topic(device_uuid), 1), (sensor_filter(device_uuid), 0)]


@dataclass
class SensorCounter:
    """The default sensor callback: count and log at debug."""

    count: int = 0

    def __call__(self, reading: SensorReading, metric: str) -> None:
        self.count += 1
        log.debug("sensor %s %s: %s %s", reading.sensor_id, metric, reading.value, reading.unit)


class Router:
    """Dispatches one message; a bad payload or a failing callback is logged, never raised."""

    def __init__(self, device_uuid: str, on_update: OnUpdate, on_reading: OnReading) -> None:
        self._update_topic = update_topic(device_uuid)
        self._sensor_prefix = f"sensor/{device_uuid}/"
        self._on_update = on_update
        self._on_reading = on_reading
        self._bad_topics: set[str] = set()
        self.updates = 0
        self.readings = 0
        self.invalid = 0

    def dispatch(self, topic: str, payload: bytes) -> None:
        if topic == self._update_topic:
            self.updates += 1
            log.info("MQTT update trigger: polling the cloud now")
            self._call(self._on_update)
            return
        if topic.startswith(self._sensor_prefix) and len(topic) > len(self._sensor_prefix):
            self._reading(topic, topic[len(self._sensor_prefix) :], payload)
            return
        log.debug("MQTT message on unexpected topic %s ignored", topic)

    def _reading(self, topic: str, metric: str, payload: bytes) -> None:
        try:
            reading = SensorReading.model_validate_json(payload)
        except ValidationError as exc:
            self.invalid += 1
            self._invalid_once(topic, exc)
            return
        self.readings += 1
        self._call(self._on_reading, reading, metric)

    def _invalid_once(self, topic: str, exc: ValidationError) -> None:
        if topic in self._bad_topics:
            return
        if len(self._bad_topics) < MAX_REMEMBERED_BAD_TOPICS:
            self._bad_topics.add(topic)
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'payload'}: {e['msg']}"
            for e in exc.errors(include_url=False, include_input=False)[:3]
        )
        log.warning(
            "invalid sensor reading on %s ignored (logged once per topic): %s", topic, problems
        )

    @staticmethod
    def _call(callback: Callable[..., None], *args: object) -> None:
        try:
            callback(*args)
        except Exception:
            log.exception("MQTT message callback failed")

"""Sensor readings from local services: published for them on the device's sensor topic.

A container does not need broker credentials of its own: it posts a reading here and the
agent publishes it on ``sensor/<uuid>/<metric>`` over its own connection (queued while the
broker is away), where the agent's sensor subscription and the cloud both see it. Without a
broker the reading goes straight to the device's anomaly detection.
"""

from __future__ import annotations

import re
from typing import Final

from aiohttp import web
from iotistic_contracts.mqtt import SensorReading, sensor_topic
from pydantic import ValidationError

from ..provisioning.errors import describe_invalid
from .context import api_context
from .errors import ApiError
from .params import json_object

routes = web.RouteTableDef()

_METRIC_RE: Final = re.compile(r"[A-Za-z0-9_-]{1,64}")


@routes.post("/v1/sensors/{metric}")
async def publish_reading(request: web.Request) -> web.Response:
    ctx = api_context(request)
    metric = request.match_info["metric"]
    if _METRIC_RE.fullmatch(metric) is None:
        raise ApiError(400, "bad_request", "metric must be 1..64 letters, digits, '_' or '-'")
    try:
        reading = SensorReading.model_validate(await json_object(request))
    except ValidationError as exc:
        raise ApiError(400, "bad_request", f"invalid reading: {describe_invalid(exc)}") from None
    manager = ctx.mqtt.manager if ctx.mqtt is not None else None
    if manager is None or manager.credentials is None:
        if ctx.anomalies is None:
            raise ApiError(
                409, "conflict", "MQTT is not configured on this device (it is not provisioned)"
            )
        # No broker (not provisioned): the device's own anomaly detection still gets it.
        ctx.anomalies.feed_reading(metric, reading)
        return web.json_response({"status": "local", "topic": None}, status=202)
    topic = sensor_topic(manager.credentials.uuid, metric)
    status = "published" if manager.connected else "queued"
    await manager.publish(topic, reading.model_dump_json(), qos=1)
    return web.json_response({"status": status, "topic": topic}, status=202)

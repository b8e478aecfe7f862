"""State reports that arrive on ``iot/device/<uuid>/state``: the same handling as
``PATCH /api/v1/device/state``, with the device identified by the topic.

The broker's ACL lets only ``device_<uuid>`` publish on its own state topic, so the topic is
the device's identity; the body must still be keyed by that same uuid, else it is dropped.
A message that cannot be applied is logged and dropped (there is nobody to answer).
"""

from __future__ import annotations

import logging
from typing import Final

from iotistic_contracts.mqtt import uuid_of_state_topic
from iotistic_contracts.provisioning import normalize_uuid

from ..clock import Clock
from ..services.errors import ServiceError
from ..services.report_input import decode_body, parse_report
from ..services.reports import ReportService

log = logging.getLogger("iotistic.cloud.mqtt")

GZIP_MAGIC: Final = b"\x1f\x8b"


class StateReportHandler:
    def __init__(self, reports: ReportService, clock: Clock) -> None:
        self._reports = reports
        self._clock = clock

    async def __call__(self, topic: str, payload: bytes) -> None:
        raw_uuid = uuid_of_state_topic(topic)
        try:
            device_uuid = normalize_uuid(raw_uuid or "")
        except ValueError:
            log.warning("MQTT message on %r dropped: not a device state topic", topic)
            return
        try:
            encoding = "gzip" if payload.startswith(GZIP_MAGIC) else None
            report = parse_report(decode_body(payload, encoding), device_uuid)
            reporter = await self._reports.reporter(device_uuid)
            outcome = await self._reports.apply(reporter, report, self._clock())
        except ServiceError as exc:
            log.warning("MQTT state report on %s dropped: %s", topic, exc.message)
            return
        log.debug("MQTT state report %s from %s: %s", outcome.sequence, device_uuid, outcome.status)

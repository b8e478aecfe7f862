"""Feeds the detector from the device: a system-metrics sample every interval and every
sensor reading (MQTT or simulation); stores what it finds in SQLite.

Simulated anomaly injection is applied to the sampled values here, before detection, so the
whole path (sample -> detector -> store -> report) is what gets tested.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, Final

from iotistic_contracts.mqtt import SensorReading

from ..store.anomaly_store import AnomalyStore
from ..telemetry.shared import metrics_summary
from .models import Detection
from .service import AnomalyDetectionService

log = logging.getLogger("iotistic.anomaly")

SAMPLE_INTERVAL_S: Final = 10.0
# System metrics by the spec's names, from the metrics summary's fields.
SYSTEM_METRICS: Final = {
    "cpu_usage": "cpuPercent",
    "cpu_temp": "temperatureC",
    "memory_percent": "memoryPercent",
    "storage_percent": "storagePercent",
}
# Injected anomalies are sized in standard deviations of the series; before the detector
# has one, this share of the value stands in for it.
INJECTION_SCALE_SHARE: Final = 0.05

Inject = Callable[[str, float, float], float]


class AnomalyPipeline:
    def __init__(
        self,
        service: AnomalyDetectionService,
        store: AnomalyStore,
        data_dir: Path,
        inject: Inject | None = None,
        sample_interval_s: float = SAMPLE_INTERVAL_S,
    ) -> None:
        self.service = service
        self._store = store
        self._data_dir = data_dir
        # The simulation's anomaly injection, applied to sampled values before detection.
        self.inject = inject
        self._interval_s = sample_interval_s

    def feed_metrics(self, summary: Mapping[str, Any]) -> list[Detection]:
        found: list[Detection] = []
        for metric, field in SYSTEM_METRICS.items():
            value = summary.get(field)
            if not isinstance(value, int | float) or isinstance(value, bool):
                continue  # a metric this device cannot read
            if self.inject is not None:
                value = self.inject(metric, float(value), abs(value) * INJECTION_SCALE_SHARE)
            found += self.service.process_data_point("system", metric, value)
        self._keep(found)
        return found

    def feed_reading(self, metric: str, reading: SensorReading) -> list[Detection]:
        source = "simulation" if reading.sensor_id.startswith("sim_") else "sensor"
        # The contract checked the ISO 8601 timestamp (with a zone); the detector counts in ms.
        at = datetime.fromisoformat(reading.timestamp.replace("Z", "+00:00"))
        millis = int(at.timestamp() * 1000)
        found = self.service.process_data_point(source, metric, reading.value, millis)
        self._keep(found)
        return found

    def stored(
        self, limit: int, metric: str | None = None, severity: str | None = None
    ) -> list[dict[str, Any]]:
        """The newest detections from SQLite (they survive restarts, unlike the summary)."""
        return self._store.recent(limit, metric, severity)

    def on_reading(self, reading: SensorReading, metric: str) -> None:
        """The MQTT manager's sensor callback."""
        self.feed_reading(metric, reading)

    def _keep(self, found: list[Detection]) -> None:
        if not found:
            return
        self._store.add(d.to_dict() for d in found)
        for detection in found:
            log.warning(
                "anomaly in %s/%s: %s (%s, %s)",
                detection.source,
                detection.metric,
                detection.value,
                detection.method,
                detection.severity,
            )

    async def run(self) -> None:
        """Samples the system metrics forever; a failed sample is logged and skipped."""
        while True:
            try:
                summary = await asyncio.to_thread(metrics_summary, self._data_dir)
                self.feed_metrics(summary)
            except Exception:
                log.exception("system metrics sample for anomaly detection failed")
            await asyncio.sleep(self._interval_s)

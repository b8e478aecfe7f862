"""Anomalies devices detected: taken from the summaries in their reports, stored once per
detection, listed per device (newest first), the newest PER_DEVICE kept."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Final

from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from ..db.engine import Database
from ..db.models import Device, DeviceAnomaly
from .errors import NotFound

PER_DEVICE: Final = 1000
_TEXT: Final = {"source": 128, "metric": 128, "method": 32, "severity": 16}


def detections_in(report_body: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The well-formed detections of a report's anomaly summary; anything else is skipped
    (the summary is the device's free-form field, the rows need these columns)."""
    summary = report_body.get("anomalies")
    recent = summary.get("recent") if isinstance(summary, Mapping) else None
    if not isinstance(recent, list):
        return []
    found = []
    for item in recent:
        if not isinstance(item, Mapping):
            continue
        stamp = item.get("timestamp")
        if isinstance(stamp, bool) or not isinstance(stamp, int) or not 0 <= stamp < 2**62:
            continue
        value = item.get("value")
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue
        if not math.isfinite(value):
            continue
        if all(isinstance(item.get(k), str) and 0 < len(item[k]) <= n for k, n in _TEXT.items()):
            found.append(dict(item))
    return found


async def store_detections(
    conn: AsyncConnection, device_uuid: str, detections: list[dict[str, Any]]
) -> None:
    """In the report's transaction; a detection already stored is skipped."""
    if not detections:
        return
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    rows = [
        {
            "device_uuid": device_uuid,
            "detected_at": d["timestamp"],
            "source": d["source"],
            "metric": d["metric"],
            "method": d["method"],
            "severity": d["severity"],
            "detection": d,
        }
        for d in detections
    ]
    result = await conn.execute(
        dialect.insert(DeviceAnomaly).values(rows).on_conflict_do_nothing()
    )
    if result.rowcount:
        newest = (
            select(DeviceAnomaly.id)
            .where(DeviceAnomaly.device_uuid == device_uuid)
            .order_by(DeviceAnomaly.id.desc())
            .limit(PER_DEVICE)
        )
        await conn.execute(
            delete(DeviceAnomaly)
            .where(DeviceAnomaly.device_uuid == device_uuid)
            .where(DeviceAnomaly.id.not_in(newest.scalar_subquery()))
        )


class AnomalyService:
    def __init__(self, database: Database) -> None:
        self._db = database

    async def list(
        self, device_uuid: str, limit: int, severity: str | None = None
    ) -> list[dict[str, Any]]:
        async with self._db.sessions() as session:
            if await session.get(Device, device_uuid) is None:
                raise NotFound(f"device {device_uuid} does not exist")
            stmt = select(DeviceAnomaly.detection).where(DeviceAnomaly.device_uuid == device_uuid)
            if severity is not None:
                stmt = stmt.where(DeviceAnomaly.severity == severity)
            stmt = stmt.order_by(DeviceAnomaly.detected_at.desc(), DeviceAnomaly.id.desc())
            return [dict(row) for row in (await session.execute(stmt.limit(limit))).scalars()]

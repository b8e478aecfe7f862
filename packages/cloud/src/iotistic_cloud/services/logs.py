"""Device logs: stored once per (device, seq), pruned by age and count, queried and followed.

An upload is one transaction: a bulk ``INSERT ... ON CONFLICT DO NOTHING RETURNING seq``
(SQLAlchemy sends it as multi-row statements; a seq already stored is skipped and counted as a
duplicate), then the device's highest seq. Retention runs in the same transaction after an
upload, at most once per PRUNE_INTERVAL per device and process: rows that arrived more than
LOG_RETENTION_DAYS ago go, and so do all but the newest LOG_MAX_RECORDS_PER_DEVICE by seq
(rows below the N-th newest seq, found by walking the (device_uuid, seq) index; a jump in a
device's sequence never erases the records before it). Both deletes use an index. Besides,
``serve`` drops every device's expired rows once an hour (sweep_expired), so a device that
stops uploading loses them too; its newest rows stay within the count limit anyway.

Follow polls the database (every FOLLOW_POLL_S) for records past the last one seen, so it
works with any number of cloud replicas behind a load balancer.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from iotistic_contracts.logs import LogRecord, LogUploadResult
from sqlalchemy import delete, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from ..clock import Clock
from ..db.engine import Database
from ..db.models import Device, DeviceLog
from .device_auth import find_device, mark_seen, require_own, seen_is_stale
from .errors import NotFound
from .log_input import finite_json, storable_text
from .log_query import LogFilter, LogPage, filtered, record_view

log = logging.getLogger("iotistic.cloud.logs")

PRUNE_INTERVAL: Final = timedelta(minutes=1)
# How often ``serve`` drops expired rows of every device (also those that stopped uploading).
EXPIRY_SWEEP_S: Final = 3600.0
FOLLOW_POLL_S: Final = 0.5


@dataclass(frozen=True)
class Uploader:
    uuid: str
    last_seen: datetime | None


class LogService:
    def __init__(
        self, database: Database, clock: Clock, retention_days: int, max_per_device: int
    ) -> None:
        self._db = database
        self._clock = clock
        self._retention = timedelta(days=retention_days)
        self._max_per_device = max_per_device
        # When this process last pruned each device (a replica prunes on its own schedule).
        self._pruned_at: dict[str, datetime] = {}

    async def authenticate(self, api_key: str, path_uuid: str) -> Uploader:
        """The device owning the key, which must be the one in the path (403 otherwise)."""
        async with self._db.reads.connect() as conn:
            row = await find_device(conn, api_key)
        require_own(row.uuid, path_uuid)
        return Uploader(row.uuid, row.last_seen)

    async def store(
        self, uploader: Uploader, records: list[tuple[LogRecord, int]]
    ) -> LogUploadResult:
        """``records``: as parse_upload gives them (each with its time in microseconds)."""
        now = self._clock()
        rows = [_row(uploader.uuid, record, micros, now) for record, micros in records]
        async with self._db.write_connection() as conn:
            accepted = await _insert(conn, rows) if rows else 0
            last = await _last_seq(conn, uploader.uuid)
            if accepted and self._prune_due(uploader.uuid, now):
                await self._prune(conn, uploader.uuid, last, now)
        if seen_is_stale(uploader.last_seen, now):
            await mark_seen(self._db, uploader.uuid, now)
        return LogUploadResult(accepted=accepted, duplicates=len(rows) - accepted, lastSeq=last)

    def _prune_due(self, device_uuid: str, now: datetime) -> bool:
        previous = self._pruned_at.get(device_uuid)
        if previous is not None and now - previous < PRUNE_INTERVAL:
            return False
        self._pruned_at[device_uuid] = now
        return True

    async def _prune(
        self, conn: AsyncConnection, device_uuid: str, last: int, now: datetime
    ) -> None:
        mine = DeviceLog.device_uuid == device_uuid
        await conn.execute(
            delete(DeviceLog).where(mine, DeviceLog.received_at < now - self._retention)
        )
        # Sequence numbers are unique: a device whose seq range is no wider than the cap
        # cannot hold more rows than it (one index lookup, the usual case below the cap).
        first = await conn.scalar(select(func.min(DeviceLog.seq)).where(mine))
        if first is None or last - first < self._max_per_device:
            return
        # Keep the newest max rows by seq, whatever the gaps: a jump in the sequence (a
        # device reset, a bad seq) must not erase the records before it. Both statements
        # walk the (device_uuid, seq) unique index.
        cutoff = await conn.scalar(
            select(DeviceLog.seq)
            .where(mine)
            .order_by(DeviceLog.seq.desc())
            .offset(self._max_per_device - 1)
            .limit(1)
        )
        if cutoff is not None:
            await conn.execute(delete(DeviceLog).where(mine, DeviceLog.seq < cutoff))

    async def prune_expired(self) -> int:
        """Rows received before the retention window, of every device: one indexed delete
        per device, each its own short transaction. Returns how many rows went."""
        cutoff = self._clock() - self._retention
        async with self._db.reads.connect() as conn:
            uuids = list(await conn.scalars(select(Device.uuid).order_by(Device.uuid)))
        deleted = 0
        for device_uuid in uuids:
            async with self._db.write_connection() as conn:
                result = await conn.execute(
                    delete(DeviceLog).where(
                        DeviceLog.device_uuid == device_uuid, DeviceLog.received_at < cutoff
                    )
                )
                deleted += result.rowcount
        return deleted

    async def sweep_expired(self, every_s: float = EXPIRY_SWEEP_S) -> None:
        """prune_expired now and every ``every_s``; a failed sweep is logged and retried at
        the next one. Runs until cancelled (the app's lifespan)."""
        while True:
            try:
                deleted = await self.prune_expired()
            except Exception:
                log.exception("pruning expired device logs failed")
            else:
                if deleted:
                    log.info("pruned %d expired device log records", deleted)
            await asyncio.sleep(every_s)

    async def query(
        self, device_uuid: str, where: LogFilter, limit: int, after_seq: int | None = None
    ) -> LogPage:
        """With ``after_seq``: the first ``limit`` matches after it; without: the newest
        ``limit``. Either way oldest first."""
        async with self._db.reads.connect() as conn:
            if await conn.scalar(select(Device.uuid).where(Device.uuid == device_uuid)) is None:
                raise NotFound(f"device {device_uuid} does not exist")
            top = await _last_seq(conn, device_uuid)
            stmt = filtered(device_uuid, where).where(DeviceLog.seq <= top)
            if after_seq is None:
                stmt = stmt.order_by(DeviceLog.seq.desc()).limit(limit)
                rows = list(reversed((await conn.execute(stmt)).all()))
                return LogPage([record_view(r) for r in rows], top)
            stmt = stmt.where(DeviceLog.seq > after_seq).order_by(DeviceLog.seq).limit(limit)
            rows = list((await conn.execute(stmt)).all())
        last = rows[-1].seq if len(rows) == limit else max(top, after_seq)
        return LogPage([record_view(r) for r in rows], last)

    async def follow(
        self,
        device_uuid: str,
        where: LogFilter,
        limit: int,
        after_seq: int | None = None,
        poll_s: float = FOLLOW_POLL_S,
    ) -> AsyncGenerator[list[dict[str, Any]], None]:
        """The query's page, then each new batch of matches as it arrives (an empty batch
        when nothing arrived within a poll: callers use it for heartbeats). Never ends."""
        page = await self.query(device_uuid, where, limit, after_seq)
        yield page.records
        cursor = page.last_seq
        while True:
            await asyncio.sleep(poll_s)
            page = await self.query(device_uuid, where, limit, cursor)
            cursor = page.last_seq
            yield page.records


async def _insert(conn: AsyncConnection, rows: list[dict[str, Any]]) -> int:
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(DeviceLog).on_conflict_do_nothing().returning(DeviceLog.seq)
    result = await conn.execute(stmt, rows)
    return len(result.all())


async def _last_seq(conn: AsyncConnection, device_uuid: str) -> int:
    stmt = select(func.max(DeviceLog.seq)).where(DeviceLog.device_uuid == device_uuid)
    return int(await conn.scalar(stmt) or 0)


def _row(device_uuid: str, record: LogRecord, micros: int, now: datetime) -> dict[str, Any]:
    return {
        "device_uuid": device_uuid,
        "seq": record.seq,
        "timestamp": record.timestamp,
        "ts_us": micros,
        "level": record.level,
        "source": record.source,
        "component": _text(record.component),
        "app": _text(record.app),
        "service": _text(record.service),
        "stream": record.stream,
        "message": storable_text(record.message),
        "truncated": record.truncated,
        "context": _context_json(record.context),
        "received_at": now,
    }


def _context_json(context: dict[str, Any] | None) -> str | None:
    """ASCII JSON (escapes NUL and lone surrogates, which a text column refuses); NaN and
    Infinity become null, so every stored context is valid JSON."""
    if context is None:
        return None
    return json.dumps(finite_json(context), allow_nan=False)


def _text(value: str | None) -> str | None:
    return None if value is None else storable_text(value)

"""State reports from devices: decode, authorise, merge, keep a bounded history."""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Literal

from iotistic_contracts.provisioning import normalize_uuid
from iotistic_contracts.sync import MAX_REPORT_BYTES, DeviceReport, StateReport
from pydantic import ValidationError
from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from ..db.engine import Database
from ..db.models import Device
from ..db.models import DeviceReport as ReportRow
from .device_auth import find_device
from .errors import Conflict, Forbidden, InvalidInput, NotFound, TooLarge, UnsupportedEncoding
from .report_merge import merge_report
from .validation import check_storable, from_validation_error

# Reports kept per device (oldest deleted first); documented in docs/cloud.md.
HISTORY_PER_DEVICE: Final = 1000
MAX_SEQUENCE: Final = 2**63 - 1
_APPLY_ATTEMPTS: Final = 5


@dataclass(frozen=True)
class ReportOutcome:
    status: Literal["accepted", "duplicate"]
    sequence: int


def decode_body(body: bytes, content_encoding: str | None) -> bytes:
    """The report's JSON bytes; gzip is inflated with a hard cap (a gzip bomb stops early)."""
    encoding = (content_encoding or "identity").strip().lower()
    if encoding == "identity":
        if len(body) > MAX_REPORT_BYTES:
            raise TooLarge(f"report is larger than {MAX_REPORT_BYTES} bytes")
        return body
    if encoding not in ("gzip", "x-gzip"):
        raise UnsupportedEncoding(f"Content-Encoding {encoding!r} is not supported (use gzip)")
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        data = inflater.decompress(body, MAX_REPORT_BYTES + 1)
    except zlib.error:
        raise InvalidInput("report body is not valid gzip") from None
    if len(data) > MAX_REPORT_BYTES or inflater.unconsumed_tail:
        raise TooLarge(f"report is larger than {MAX_REPORT_BYTES} bytes once decompressed")
    if not inflater.eof or inflater.unused_data:
        raise InvalidInput("report body is not one complete gzip stream")
    return data


def parse_report(raw: bytes, device_uuid: str) -> DeviceReport:
    try:
        reports = StateReport.model_validate_json(raw).root
    except ValidationError as exc:
        raise from_validation_error("invalid state report", exc) from None
    if len(reports) != 1:
        raise InvalidInput(f"a state report holds exactly one device, got {len(reports)}")
    ((key, report),) = reports.items()
    try:
        same = normalize_uuid(key) == device_uuid
    except ValueError:
        same = False
    if not same:
        raise Forbidden("a device can only report its own state")
    if report.sequence > MAX_SEQUENCE:
        message = f"must be at most {MAX_SEQUENCE}"
        raise InvalidInput(
            f"invalid state report: {key}.sequence: {message}",
            [{"field": f"{key}.sequence", "message": message}],
        )
    return report


class ReportService:
    def __init__(self, database: Database, history_per_device: int = HISTORY_PER_DEVICE) -> None:
        self._db = database
        self._keep = history_per_device

    async def authenticate(self, api_key: str) -> str:
        async with self._db.engine.connect() as conn:
            return str((await find_device(conn, api_key)).uuid)

    async def apply(self, device_uuid: str, report: DeviceReport, now: datetime) -> ReportOutcome:
        # Checked before the JSON dump, which would turn an infinite number into null.
        # Keyed like the request, so field paths read the same as validation errors.
        check_storable({device_uuid: report.model_dump(exclude_unset=True)}, "invalid state report")
        body = report.model_dump(mode="json", exclude_unset=True)
        for _ in range(_APPLY_ATTEMPTS):
            async with self._db.sessions() as session, session.begin():
                outcome = await self._apply_once(session, device_uuid, report, body, now)
                if outcome is not None:
                    return outcome
        raise Conflict("reports for this device arrived concurrently too often; send it again")

    async def _apply_once(
        self,
        session: AsyncSession,
        device_uuid: str,
        report: DeviceReport,
        body: dict[str, Any],
        now: datetime,
    ) -> ReportOutcome | None:
        row = (
            await session.execute(
                select(Device.reported_state, Device.last_report_sequence).where(
                    Device.uuid == device_uuid
                )
            )
        ).first()
        if row is None:
            raise NotFound(f"device {device_uuid} does not exist")
        previous = row.last_report_sequence
        if not report.full and previous is not None and report.sequence <= previous:
            await session.execute(
                update(Device).where(Device.uuid == device_uuid).values(last_seen=now)
            )
            return ReportOutcome("duplicate", report.sequence)
        # Compare-and-set on the sequence: a concurrent report makes this one re-read and merge.
        result = await session.execute(
            update(Device)
            .where(Device.uuid == device_uuid)
            .where(Device.last_report_sequence.is_not_distinct_from(previous))
            .values(
                reported_state=merge_report(row.reported_state, body),
                last_report_sequence=report.sequence,
                reported_at=now,
                last_seen=now,
            )
            .execution_options(synchronize_session=False)
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            return None
        session.add(
            ReportRow(
                device_uuid=device_uuid,
                sequence=report.sequence,
                full=report.full,
                reported_at=report.reportedAt,
                received_at=now,
                body=body,
            )
        )
        await session.flush()
        await _prune(session, device_uuid, self._keep)
        return ReportOutcome("accepted", report.sequence)

    async def history(self, device_uuid: str, limit: int) -> list[ReportRow]:
        """The newest ``limit`` reports, oldest first (the order they were received in)."""
        async with self._db.sessions() as session:
            if await session.get(Device, device_uuid) is None:
                raise NotFound(f"device {device_uuid} does not exist")
            stmt = (
                select(ReportRow)
                .where(ReportRow.device_uuid == device_uuid)
                .order_by(ReportRow.id.desc())
                .limit(limit)
            )
            rows = list((await session.execute(stmt)).scalars())
        rows.reverse()
        return rows


async def _prune(session: AsyncSession, device_uuid: str, keep: int) -> None:
    oldest_kept = (
        select(ReportRow.id)
        .where(ReportRow.device_uuid == device_uuid)
        .order_by(ReportRow.id.desc())
        .offset(keep - 1)
        .limit(1)
        .scalar_subquery()
    )
    await session.execute(
        delete(ReportRow)
        .where(ReportRow.device_uuid == device_uuid, ReportRow.id < oldest_kept)
        .execution_options(synchronize_session=False)
    )

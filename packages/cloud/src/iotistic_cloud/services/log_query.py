"""What a log query asks for, checked once (API and CLI share it), and its SQL."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from iotistic_contracts.logs import LOG_LEVELS, LogLevel, LogSource, LogStream
from sqlalchemy import Row, Select, select

from ..clock import isoformat
from ..db.models import DeviceLog
from .errors import InvalidInput

DEFAULT_LOG_LIMIT: Final = 1000
MAX_LOG_LIMIT: Final = 10_000
MAX_TEXT_QUERY_CHARS: Final = 1000
# The longest duration ``since``/``until`` take (about ten years).
MAX_RELATIVE_DAYS: Final = 3650
_SOURCES: Final[tuple[LogSource, ...]] = ("agent", "container")
_STREAMS: Final[tuple[LogStream, ...]] = ("stdout", "stderr")
_RELATIVE_RE: Final = re.compile(r"([0-9]{1,9})\s*([smhd])")
_SECONDS: Final = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_COLUMNS: Final = (
    DeviceLog.seq,
    DeviceLog.timestamp,
    DeviceLog.level,
    DeviceLog.source,
    DeviceLog.message,
    DeviceLog.truncated,
    DeviceLog.component,
    DeviceLog.context,
    DeviceLog.app,
    DeviceLog.service,
    DeviceLog.stream,
    DeviceLog.received_at,
)


@dataclass(frozen=True)
class LogFilter:
    service: str | None = None
    app: str | None = None
    # This level and above.
    level: LogLevel | None = None
    source: LogSource | None = None
    stream: LogStream | None = None
    since_us: int | None = None
    until_us: int | None = None
    text: str | None = None


@dataclass(frozen=True)
class LogPage:
    records: list[dict[str, Any]]
    # Where to continue (after_seq): everything matching up to here was returned or skipped.
    last_seq: int


def parse_filter(
    now: datetime,
    *,
    service: str | None = None,
    app: str | None = None,
    level: str | None = None,
    source: str | None = None,
    stream: str | None = None,
    since: str | None = None,
    until: str | None = None,
    text: str | None = None,
) -> LogFilter:
    """InvalidInput names the parameter; ``since``/``until`` take RFC 3339 or 15m, 2h, 7d."""
    if level is not None and level not in LOG_LEVELS:
        raise _bad("level", f"must be one of {', '.join(LOG_LEVELS)}")
    if source is not None and source not in _SOURCES:
        raise _bad("source", f"must be one of {', '.join(_SOURCES)}")
    if stream is not None and stream not in _STREAMS:
        raise _bad("stream", f"must be one of {', '.join(_STREAMS)}")
    if text is not None and len(text) > MAX_TEXT_QUERY_CHARS:
        raise _bad("q", f"must be at most {MAX_TEXT_QUERY_CHARS} characters")
    since_us = None if since is None else time_bound_us("since", since, now)
    until_us = None if until is None else time_bound_us("until", until, now)
    if since_us is not None and until_us is not None and until_us < since_us:
        raise _bad("until", "must not be before since")
    return LogFilter(
        service=service or None,
        app=app or None,
        level=level,
        source=source,
        stream=stream,
        since_us=since_us,
        until_us=until_us,
        text=text or None,
    )


def check_limit(limit: int) -> int:
    if not 1 <= limit <= MAX_LOG_LIMIT:
        raise _bad("limit", f"must be between 1 and {MAX_LOG_LIMIT}")
    return limit


def time_bound_us(name: str, value: str, now: datetime) -> int:
    """Unix microseconds of an RFC 3339 time, or of ``now`` minus a duration (15m, 2h);
    a duration over MAX_RELATIVE_DAYS or a time outside years 1..9999 in UTC is refused."""
    text = value.strip()
    relative = _RELATIVE_RE.fullmatch(text.lower())
    if relative is not None:
        seconds = int(relative.group(1)) * _SECONDS[relative.group(2)]
        if seconds > MAX_RELATIVE_DAYS * 86400:
            raise _bad(name, f"a duration must be at most {MAX_RELATIVE_DAYS}d")
        moment = now - timedelta(seconds=seconds)
    else:
        try:
            moment = datetime.fromisoformat(text.replace("z", "Z"))
        except ValueError:
            raise _bad(name, "must be an RFC 3339 time or a duration like 15m, 2h, 7d") from None
        if moment.tzinfo is None:
            raise _bad(name, "needs a time zone (Z or +hh:mm)")
    try:
        delta = moment.astimezone(UTC) - datetime(1970, 1, 1, tzinfo=UTC)
    except (OverflowError, ValueError):
        raise _bad(name, "is out of range (years 1 to 9999 in UTC)") from None
    return delta // timedelta(microseconds=1)


def filtered(device_uuid: str, where: LogFilter) -> Select[Any]:
    stmt = select(*_COLUMNS).where(DeviceLog.device_uuid == device_uuid)
    if where.service is not None:
        stmt = stmt.where(DeviceLog.service == where.service)
    if where.app is not None:
        stmt = stmt.where(DeviceLog.app == where.app)
    if where.level is not None and where.level != LOG_LEVELS[0]:
        stmt = stmt.where(DeviceLog.level.in_(LOG_LEVELS[LOG_LEVELS.index(where.level) :]))
    if where.source is not None:
        stmt = stmt.where(DeviceLog.source == where.source)
    if where.stream is not None:
        stmt = stmt.where(DeviceLog.stream == where.stream)
    if where.since_us is not None:
        stmt = stmt.where(DeviceLog.ts_us >= where.since_us)
    if where.until_us is not None:
        stmt = stmt.where(DeviceLog.ts_us <= where.until_us)
    if where.text is not None:
        stmt = stmt.where(DeviceLog.message.icontains(where.text, autoescape=True))
    return stmt


def record_view(row: Row[Any]) -> dict[str, Any]:
    """A LogRecord's JSON (optional fields only when set) plus ``receivedAt``."""
    view: dict[str, Any] = {
        "seq": row.seq,
        "timestamp": row.timestamp,
        "level": row.level,
        "source": row.source,
        "message": row.message,
        "truncated": row.truncated,
    }
    for name in ("component", "app", "service", "stream"):
        value = getattr(row, name)
        if value is not None:
            view[name] = value
    if row.context is not None:
        # Rows stored before non-finite numbers were nulled at upload may hold NaN/Infinity.
        view["context"] = json.loads(row.context, parse_constant=_null)
    view["receivedAt"] = isoformat(row.received_at)
    return view


def _null(_constant: str) -> None:
    return None


def _bad(name: str, message: str) -> InvalidInput:
    return InvalidInput(f"{name}: {message}", [{"field": name, "message": message}])

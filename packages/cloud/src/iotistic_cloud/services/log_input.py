"""A log upload as it arrives: NDJSON of LogRecord lines, maybe gzip, within the contract's
limits; one bad line refuses the whole upload and names the line and the field."""

from __future__ import annotations

import functools
import math
from datetime import datetime
from typing import Any, Final

from iotistic_contracts.logs import (
    LOGS_CONTENT_TYPE,
    LOGS_GZIP_CONTENT_TYPE,
    MAX_LOG_RECORDS_PER_UPLOAD,
    MAX_LOG_UPLOAD_BYTES,
    MAX_LOG_UPLOAD_DECOMPRESSED_BYTES,
    LogRecord,
)
from pydantic import ValidationError

from .errors import InvalidInput, TooLarge, UnsupportedEncoding
from .gunzip import gunzip_bounded
from .media_types import media_type
from .validation import from_validation_error

_GZIP_ENCODINGS: Final = frozenset({"gzip", "x-gzip"})
# Media types taken as NDJSON; a missing Content-Type is too (devices send the contract's).
_NDJSON_TYPES: Final = frozenset({"", LOGS_CONTENT_TYPE, "application/jsonl"})
_EPOCH_ORDINAL: Final = datetime(1970, 1, 1).toordinal()


class BadLogLine(InvalidInput):
    """A line of the upload is not a valid LogRecord (400 with its 1-based ``line``)."""

    def __init__(self, line: int, field: str | None, problem: str) -> None:
        where = f"line {line}" if field is None else f"line {line}: {field}"
        super().__init__(
            f"invalid log record: {where}: {problem}",
            [{"field": field or "", "message": problem}] if field else None,
        )
        self.line = line
        self.field = field


def is_gzip(content_type: str | None, content_encoding: str | None) -> bool:
    """Whether the body is gzip; anything but NDJSON or gzip is refused (415)."""
    media = media_type(content_type)
    encoding = (content_encoding or "identity").strip().lower()
    if encoding not in _GZIP_ENCODINGS and encoding != "identity":
        raise UnsupportedEncoding(f"Content-Encoding {encoding!r} is not supported (use gzip)")
    if media == LOGS_GZIP_CONTENT_TYPE:
        return True
    if media not in _NDJSON_TYPES:
        raise UnsupportedEncoding(
            f"Content-Type {media!r} is not supported (use {LOGS_CONTENT_TYPE})"
        )
    return encoding in _GZIP_ENCODINGS


def decode_upload(body: bytes, gzipped: bool) -> bytes:
    """The NDJSON bytes; gzip is inflated with a hard cap, so a gzip bomb stops early."""
    if len(body) > MAX_LOG_UPLOAD_BYTES:
        raise TooLarge(f"log upload is larger than {MAX_LOG_UPLOAD_BYTES} bytes")
    if not gzipped:
        return body
    return gunzip_bounded(body, MAX_LOG_UPLOAD_DECOMPRESSED_BYTES, "log upload")


def parse_upload(data: bytes) -> list[tuple[LogRecord, int]]:
    """Every non-empty line as a LogRecord with its time in Unix microseconds, in order."""
    records: list[tuple[LogRecord, int]] = []
    for number, line in enumerate(data.split(b"\n"), start=1):
        if not line.strip():
            continue
        if len(records) == MAX_LOG_RECORDS_PER_UPLOAD:
            raise TooLarge(f"a log upload holds at most {MAX_LOG_RECORDS_PER_UPLOAD} records")
        try:
            record = LogRecord.model_validate_json(line)
        except ValidationError as exc:
            raise _line_error(number, exc) from None
        try:
            micros = timestamp_us(record.timestamp)
        except ValueError:
            raise BadLogLine(number, "timestamp", "not a valid date and time") from None
        records.append((record, micros))
    return records


def storable_text(text: str) -> str:
    """Text a database column takes: NUL and unpaired surrogates (a container may print
    anything) become U+FFFD rather than refusing the upload."""
    if "\x00" in text:
        text = text.replace("\x00", "\ufffd")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
    return text


def finite_json(value: Any) -> Any:
    """``value`` (parsed JSON) with every non-finite number (NaN, Infinity, an overflowing
    1e400) replaced by None, at any depth: what is stored is always valid JSON."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: finite_json(item) for key, item in value.items()}
    if isinstance(value, list):
        return [finite_json(item) for item in value]
    return value


def timestamp_us(timestamp: str) -> int:
    """Unix microseconds of a contract timestamp (``YYYY-MM-DDTHH:MM:SS[.f]Z``, UTC);
    digits past the microsecond are dropped."""
    seconds = _unix_seconds(timestamp[:19])
    fraction = ""
    if len(timestamp) > 19 and timestamp[19] == ".":
        fraction = timestamp[20:].rstrip("Z").split("+", 1)[0]
    return seconds * 1_000_000 + int((fraction + "000000")[:6])


@functools.lru_cache(maxsize=4096)
def _unix_seconds(whole_seconds: str) -> int:
    # Records come in bursts within the same second: the cache saves most of the parsing.
    moment = datetime.fromisoformat(whole_seconds)
    days = moment.toordinal() - _EPOCH_ORDINAL
    return days * 86400 + moment.hour * 3600 + moment.minute * 60 + moment.second


def _line_error(number: int, exc: ValidationError) -> BadLogLine:
    general = from_validation_error("", exc)
    first = general.errors[0] if general.errors else None
    if first is None or not first.get("field"):
        problem = first["message"] if first else "not a JSON object"
        return BadLogLine(number, None, problem)
    return BadLogLine(number, first["field"], first["message"])

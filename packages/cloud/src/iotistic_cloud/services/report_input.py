"""A state report as it arrives: gzip within limits, validated, for the sending device only."""

from __future__ import annotations

from typing import Final

from iotistic_contracts.provisioning import normalize_uuid
from iotistic_contracts.sync import MAX_REPORT_BYTES, DeviceReport, StateReport
from pydantic import ValidationError

from .errors import Forbidden, InvalidInput, TooLarge, UnsupportedEncoding
from .gunzip import gunzip_bounded
from .validation import from_validation_error

# Stored in a BIGINT column.
MAX_SEQUENCE: Final = 2**63 - 1


def decode_body(body: bytes, content_encoding: str | None) -> bytes:
    """The report's JSON bytes; gzip is inflated with a hard cap (a gzip bomb stops early)."""
    encoding = (content_encoding or "identity").strip().lower()
    if encoding == "identity":
        if len(body) > MAX_REPORT_BYTES:
            raise TooLarge(f"report is larger than {MAX_REPORT_BYTES} bytes")
        return body
    if encoding not in ("gzip", "x-gzip"):
        raise UnsupportedEncoding(f"Content-Encoding {encoding!r} is not supported (use gzip)")
    return gunzip_bounded(body, MAX_REPORT_BYTES, "report")


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

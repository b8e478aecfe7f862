"""ISO 8601 timestamps on the wire: always with a time zone, so devices and cloud agree."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator


def check_timestamp(value: str) -> str:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise ValueError("must be an ISO 8601 timestamp") from exc
    if parsed.tzinfo is None:
        raise ValueError("must be an ISO 8601 timestamp with a time zone")
    return value


Timestamp = Annotated[str, AfterValidator(check_timestamp)]

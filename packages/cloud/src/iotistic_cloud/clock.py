"""Where "now" comes from: services take it as an argument so tests can set the time."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


def isoformat(value: datetime | None) -> str | None:
    """ISO 8601 with an explicit UTC offset, the form every wire timestamp uses."""
    return None if value is None else value.astimezone(UTC).isoformat()

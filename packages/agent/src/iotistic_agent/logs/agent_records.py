"""The agent's own log records, as log shipping records (sampled per level)."""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Final

from iotistic_contracts.logs import MAX_LOG_MESSAGE_CHARS

from .sampling import LevelSampler

MAX_STACK_CHARS: Final = 4096
_LEVELS: Final = {"DEBUG": "debug", "INFO": "info", "WARNING": "warn"}


def level_of(record: logging.LogRecord) -> str:
    return _LEVELS.get(record.levelname, "error" if record.levelno >= logging.ERROR else "info")


def utc_timestamp(created: float) -> str:
    return datetime.fromtimestamp(created, UTC).isoformat(timespec="microseconds")[:-6] + "Z"


class ShippingHandler(logging.Handler):
    """Hands every record the sampler keeps to ``offer`` (the shipper's, never blocking)."""

    def __init__(
        self,
        offer: Callable[[Mapping[str, Any]], None],
        sampler: LevelSampler,
        component: Callable[[str], str],
    ) -> None:
        super().__init__()
        self._offer = offer
        self.sampler = sampler  # replaced whole when the sampling rates change
        self._component = component

    def emit(self, record: logging.LogRecord) -> None:
        level = level_of(record)
        if not self.sampler.keep(level):
            return
        try:
            message = record.getMessage()
        except Exception:  # a bad format string must not break logging
            self.handleError(record)
            return
        fields: dict[str, Any] = {
            "timestamp": utc_timestamp(record.created),
            "level": level,
            "source": "agent",
            "component": self._component(record.name),
            "message": message[:MAX_LOG_MESSAGE_CHARS],
        }
        if len(message) > MAX_LOG_MESSAGE_CHARS:
            fields["truncated"] = True
        context = getattr(record, "context", None)
        extra: dict[str, Any] = dict(context) if isinstance(context, Mapping) else {}
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            extra["error"] = f"{type(exc).__name__}: {exc}"
            stack = "".join(traceback.format_exception(*record.exc_info))
            extra["stack"] = stack[-MAX_STACK_CHARS:]
        if extra:
            fields["context"] = extra
        self._offer(fields)

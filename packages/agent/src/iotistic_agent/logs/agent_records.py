"""The agent's own log records, as log shipping records (sampled per level).

Built from the same redacted entry as the agent's JSON lines (``formatting.record_entry``):
the message is redacted by the filter every handler carries, the exception text and stack by
the entry itself, so nothing reaches the cloud that the local log would not show.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping
from typing import Any, Final

from iotistic_contracts.logs import MAX_LOG_MESSAGE_CHARS

from .formatting import level_name, record_entry
from .sampling import LevelSampler

MAX_STACK_CHARS: Final = 4096


def json_safe(value: Any) -> Any:
    """A context value that is valid JSON: NaN and infinities (which JSON cannot carry) become
    their text; containers are walked."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value


class ShippingHandler(logging.Handler):
    """Hands every record the sampler keeps to ``offer`` (the shipper's, never blocking)."""

    def __init__(self, offer: Callable[[Mapping[str, Any]], None], sampler: LevelSampler) -> None:
        super().__init__()
        self._offer = offer
        self.sampler = sampler  # replaced whole when the sampling rates change

    def emit(self, record: logging.LogRecord) -> None:
        level = level_name(record.levelno)
        if not self.sampler.keep(level):
            return
        try:
            entry = record_entry(record)
        except Exception:  # a bad format string must not break logging
            self.handleError(record)
            return
        message = str(entry["message"])
        fields: dict[str, Any] = {
            "timestamp": entry["timestamp"],
            "level": level,
            "source": "agent",
            "component": entry["component"],
            "message": message[:MAX_LOG_MESSAGE_CHARS],
        }
        if len(message) > MAX_LOG_MESSAGE_CHARS:
            fields["truncated"] = True
        context: dict[str, Any] = dict(entry.get("context") or {})
        if "error" in entry:
            context["error"] = entry["error"]
        if "stack" in entry:
            context["stack"] = str(entry["stack"])[-MAX_STACK_CHARS:]
        if context:
            fields["context"] = json_safe(context)
        self._offer(fields)

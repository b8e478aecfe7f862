"""How a log record is written: one JSON object per line for machines, plain text for people.

A JSON line has `timestamp` (RFC 3339, UTC, microseconds, `Z`), `level` (`debug`, `info`,
`warn`, `error`), `component` (see `components.py`), `message`, and when present `context`
(the caller's `extra={"context": {...}}`), `error` and `stack` (an exception or stack info).
The in-memory ring keeps the same fields, so `iotctl logs` shows what the files hold.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import IO, Any, Literal

from .components import component_for
from .redaction import redact_text

LogFormat = Literal["auto", "json", "text"]
LogEntry = dict[str, Any]


def level_name(levelno: int) -> str:
    if levelno >= logging.ERROR:
        return "error"
    if levelno >= logging.WARNING:
        return "warn"
    if levelno >= logging.INFO:
        return "info"
    return "debug"


def timestamp(created: float) -> str:
    return datetime.fromtimestamp(created, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def record_entry(record: logging.LogRecord) -> LogEntry:
    """The structured fields of a record (raises what `getMessage` raises on a bad format)."""
    explicit = getattr(record, "component", None)
    entry: LogEntry = {
        "timestamp": timestamp(record.created),
        "level": level_name(record.levelno),
        "component": str(explicit) if explicit else component_for(record.name),
        "message": record.getMessage(),
    }
    context = getattr(record, "context", None)
    if context is not None:
        entry["context"] = dict(context) if isinstance(context, Mapping) else {"value": context}
    if record.exc_info and record.exc_info[1] is not None:
        error = record.exc_info[1]
        text = str(error)
        name = type(error).__name__
        entry["error"] = redact_text(f"{name}: {text}" if text else name)
    stack = record.exc_text
    if not stack and record.exc_info:
        stack = logging.Formatter().formatException(record.exc_info)
    if record.stack_info:
        stack = f"{stack}\n{record.stack_info}" if stack else record.stack_info
    if stack:
        entry["stack"] = redact_text(stack)
    return entry


def _json_default(value: object) -> str:
    return str(value)


def entry_json(entry: Mapping[str, Any]) -> str:
    return json.dumps(entry, ensure_ascii=False, default=_json_default, separators=(",", ":"))


class JsonLinesFormatter(logging.Formatter):
    """One JSON object per line; a newline in a message stays escaped inside its string."""

    def format(self, record: logging.LogRecord) -> str:
        return entry_json(record_entry(record))


class TextFormatter(logging.Formatter):
    """`2024-05-01T10:00:00.123456Z INFO  mqtt: connected key=value`, then the stack."""

    def format(self, record: logging.LogRecord) -> str:
        entry = record_entry(record)
        line = (
            f"{entry['timestamp']} {entry['level'].upper():<5} "
            f"{entry['component']}: {entry['message']}"
        )
        context = entry.get("context")
        if context:
            pairs = " ".join(f"{k}={_text_value(v)}" for k, v in context.items())
            line = f"{line} {pairs}"
        if "stack" in entry:
            line = f"{line}\n{entry['stack']}"
        return line


def _text_value(value: object) -> str:
    if isinstance(value, str) and value and not any(c.isspace() or c in "\"'=" for c in value):
        return value
    return json.dumps(value, ensure_ascii=False, default=_json_default)


def resolve_format(wanted: LogFormat, stream: IO[str] | None) -> Literal["json", "text"]:
    """`auto`: text on a terminal (people), JSON lines otherwise (files, pipes, collectors)."""
    if wanted != "auto":
        return wanted
    try:
        terminal = stream is not None and stream.isatty()
    except (AttributeError, ValueError):  # closed or odd streams
        terminal = False
    return "text" if terminal else "json"


def formatter_for(kind: Literal["json", "text"]) -> logging.Formatter:
    return TextFormatter() if kind == "text" else JsonLinesFormatter()

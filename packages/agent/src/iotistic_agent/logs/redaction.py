"""Secrets never reach a log: a filter that redacts known secret shapes from every record.

Shapes: the cloud's prefixed tokens (`ipk_` provisioning keys, `idk_` device API keys,
`iat_` admin tokens: the prefix and 43 URL-safe base64 characters; 16 or more are enough to
be redacted, so short display prefixes stay readable), `Authorization: Bearer|Basic ...`
and `Bearer ...` values, and `password=...` / `"password": "..."` style pairs (also
`apiKey`, `token`, `secret` and names ending in them, e.g. `mqttPassword`), and the
password of a URL (`mqtt://user:secret@host`). Context values
under such keys are redacted whole. The replacement is `[redacted]`.

The filter sits on every handler the agent installs (`LoggingSetup.add_handler`), so it runs
before any of them formats or ships a record.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any

REDACTED = "[redacted]"

_SECRET_NAME = r"[\w-]*(?:password|passwd|secret|api_?key|token)"
_TOKEN = re.compile(r"\b((?:ipk|idk|iat)_)[A-Za-z0-9_-]{16,}")
_AUTHORIZATION = re.compile(
    r"""(?i)(\bauthorization["']?\s*[:=]\s*["']?(?:(?:bearer|basic|token)\s+)?)[^\s"',;}\]]+"""
)
_BEARER = re.compile(r"(?i)(\bbearer\s+)[A-Za-z0-9._~+/=-]{8,}")
_PAIR = re.compile(
    rf"""(?i)(["']?\b{_SECRET_NAME}["']?\s*[:=]\s*)("(?:[^"\\]|\\.)*"|'[^']*'|[^\s,;&}}\]]+)"""
)
_URL_PASSWORD = re.compile(r"(\b[a-z][a-z0-9+.-]*://[^\s/:@]+:)[^\s/@]+@")
_SECRET_KEY = re.compile(rf"(?i)^{_SECRET_NAME}$|^authorization$")


def _pair(match: re.Match[str]) -> str:
    value = match.group(2)
    if value[:1] in ('"', "'"):
        return f"{match.group(1)}{value[0]}{REDACTED}{value[0]}"
    return f"{match.group(1)}{REDACTED}"


def redact_text(text: str) -> str:
    """`text` with every known secret shape replaced; idempotent."""
    if not text:
        return text
    text = _TOKEN.sub(rf"\g<1>{REDACTED}", text)
    text = _AUTHORIZATION.sub(rf"\g<1>{REDACTED}", text)
    text = _BEARER.sub(rf"\g<1>{REDACTED}", text)
    text = _URL_PASSWORD.sub(rf"\g<1>{REDACTED}@", text)
    return _PAIR.sub(_pair, text)


def is_secret_key(key: str) -> bool:
    return bool(_SECRET_KEY.match(key))


def redact_value(value: Any) -> Any:
    """A copy of a context value with secrets redacted (mappings and lists are walked)."""
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, Mapping):
        return {
            str(k): REDACTED if is_secret_key(str(k)) else redact_value(v) for k, v in value.items()
        }
    if isinstance(value, list | tuple | set | frozenset):
        return [redact_value(v) for v in value]
    if value is None or isinstance(value, bool | int | float):
        return value
    return redact_text(str(value))


class RedactingFilter(logging.Filter):
    """Rewrites a record in place: message (with its arguments merged), context, exception
    and stack text. Never drops a record. Running it twice changes nothing."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "_iotistic_redacted", False):
            return True
        try:
            message = record.getMessage()
        except Exception:
            return True  # a broken format string: the handler reports it (handleError)
        record.msg = redact_text(message)
        record.args = None
        context = getattr(record, "context", None)
        if context is not None:
            redacted = (
                redact_value(context) if isinstance(context, Mapping) else redact_text(str(context))
            )
            setattr(record, "context", redacted)  # noqa: B010 - not a declared attribute
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact_text(record.exc_text)
        if record.stack_info:
            record.stack_info = redact_text(record.stack_info)
        setattr(record, "_iotistic_redacted", True)  # noqa: B010
        return True

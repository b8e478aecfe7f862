"""Pydantic errors as field paths and messages, without the input values (they may be secrets)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Final

from iotistic_contracts.errors import format_loc
from pydantic import ValidationError
from pydantic_core import ErrorDetails

from .errors import InvalidInput

MAX_ERRORS_IN_MESSAGE: Final = 5
_PLAIN_MESSAGES: Final = {
    "extra_forbidden": "unknown field",
    "missing": "required field is missing",
    "json_invalid": "not valid JSON",
}


def field_errors(errors: Sequence[ErrorDetails | dict[str, Any]]) -> list[dict[str, str]]:
    return [{"field": format_loc(tuple(err["loc"])), "message": _message(err)} for err in errors]


def _message(err: ErrorDetails | dict[str, Any]) -> str:
    kind = err["type"]
    if kind in _PLAIN_MESSAGES:
        return _PLAIN_MESSAGES[kind]
    ctx = err.get("ctx") or {}
    if kind == "value_error" and "error" in ctx:
        return str(ctx["error"])
    return str(err["msg"])


def invalid_input(prefix: str, errors: list[dict[str, str]]) -> InvalidInput:
    shown = [
        f"{err['field']}: {err['message']}" if err["field"] else err["message"]
        for err in errors[:MAX_ERRORS_IN_MESSAGE]
    ]
    message = f"{prefix}: " + "; ".join(shown)
    if len(errors) > MAX_ERRORS_IN_MESSAGE:
        message += f" (and {len(errors) - MAX_ERRORS_IN_MESSAGE} more)"
    return InvalidInput(message, errors)


def from_validation_error(prefix: str, exc: ValidationError) -> InvalidInput:
    return invalid_input(prefix, field_errors(exc.errors(include_url=False, include_input=False)))


def check_storable(value: Any, prefix: str) -> None:
    """Reject what JSON allows but a database column does not: NUL characters and lone
    surrogates (PostgreSQL text), and non-finite numbers (JSON has no NaN or Infinity)."""
    problem = _find_unstorable(value, ())
    if problem is not None:
        loc, message = problem
        raise invalid_input(prefix, [{"field": format_loc(loc), "message": message}])


def _find_unstorable(
    value: Any, loc: tuple[int | str, ...]
) -> tuple[tuple[int | str, ...], str] | None:
    if isinstance(value, str):
        return _text_problem(value, loc)
    if isinstance(value, float) and not math.isfinite(value):
        return loc, "must be a finite number"
    if isinstance(value, dict):
        for key, item in value.items():
            key_problem = _text_problem(str(key), loc)
            if key_problem is not None:
                return key_problem[0], f"key {key_problem[1]}"
            found = _find_unstorable(item, (*loc, str(key)))
            if found is not None:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found = _find_unstorable(item, (*loc, index))
            if found is not None:
                return found
    return None


def _text_problem(
    text: str, loc: tuple[int | str, ...]
) -> tuple[tuple[int | str, ...], str] | None:
    if "\x00" in text:
        return loc, "must not contain NUL characters"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return loc, "must not contain unpaired surrogates"
    return None

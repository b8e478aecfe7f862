"""Turn raw input into a ``TargetState`` or one readable ``TargetStateError``."""

from __future__ import annotations

import json
import re
from typing import Any, Final

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from .target_state import TargetState

MAX_ERRORS_IN_MESSAGE: Final = 5
_PREFIX: Final = "invalid target state"
_PLAIN_KEY_RE: Final = re.compile(r"[A-Za-z0-9_-]+")
# Pydantic's wording for the cases a device operator meets most, in plainer words.
_MESSAGES: Final[dict[str, str]] = {
    "extra_forbidden": "unknown field",
    "missing": "required field is missing",
}


class TargetStateError(ValueError):
    """A target state was rejected; ``errors`` lists every problem with its dotted field path."""

    def __init__(self, message: str, errors: list[dict[str, str]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.errors: list[dict[str, str]] = errors if errors is not None else []

    def __reduce__(self) -> tuple[type[TargetStateError], tuple[str, list[dict[str, str]]]]:
        return type(self), (self.message, self.errors)


def parse_target_state(data: object) -> TargetState:
    """Validate a target state given as a dict or as JSON text (``str``/``bytes``)."""
    if isinstance(data, str | bytes | bytearray):
        data = _load_json(data)
    if not isinstance(data, dict):
        message = f"top level must be an object, got {type(data).__name__}"
        raise TargetStateError(f"{_PREFIX}: {message}", [{"field": "", "message": message}])
    try:
        return TargetState.model_validate(data)
    except ValidationError as exc:
        raise _from_validation_error(exc) from exc


def _load_json(text: str | bytes | bytearray) -> Any:
    try:
        return json.loads(text, object_pairs_hook=_no_duplicate_keys, parse_constant=_no_constant)
    except (ValueError, RecursionError) as exc:
        # JSONDecodeError and UnicodeDecodeError are both ValueErrors.
        message = f"not valid JSON: {exc}"
        errors = [{"field": "", "message": message}]
        raise TargetStateError(f"{_PREFIX}: {message}", errors) from exc


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # json.loads would silently keep the last value; a target must not be ambiguous.
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {key!r}")
        result[key] = value
    return result


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed")


def _from_validation_error(exc: ValidationError) -> TargetStateError:
    errors = [{"field": format_loc(err["loc"]), "message": _message(err)} for err in exc.errors()]
    shown = [_join(err["field"], err["message"]) for err in errors[:MAX_ERRORS_IN_MESSAGE]]
    message = f"{_PREFIX}: " + "; ".join(shown)
    hidden = len(errors) - MAX_ERRORS_IN_MESSAGE
    if hidden > 0:
        message += f" (and {hidden} more)"
    return TargetStateError(message, errors)


def format_loc(loc: tuple[int | str, ...]) -> str:
    """``("apps", "1001", "services", 0, "config")`` -> ``apps.1001.services[0].config``."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        elif _PLAIN_KEY_RE.fullmatch(part):
            text += f".{part}" if text else part
        else:
            # Keys such as label names contain dots; quote them so the path stays unambiguous.
            text += f"[{json.dumps(part)}]"
    return text


def _message(err: ErrorDetails) -> str:
    if err["type"] in _MESSAGES:
        return _MESSAGES[err["type"]]
    ctx = err.get("ctx") or {}
    if err["type"] == "value_error" and "error" in ctx:
        return str(ctx["error"])
    return err["msg"]


def _join(field: str, message: str) -> str:
    return f"{field}: {message}" if field else message

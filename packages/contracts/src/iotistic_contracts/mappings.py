"""Normalise compose mappings given either as ``{"K": v}`` or as ``["K=v", "K"]``."""

from __future__ import annotations

import math


def normalise_environment(value: object) -> dict[str, str]:
    """Return ``environment`` as ``dict[str, str]``; booleans become ``"true"``/``"false"``."""
    return _normalise_mapping(value, "environment variable", scalar_values=True)


def normalise_label_mapping(value: object) -> dict[str, str]:
    """Return ``labels`` as ``dict[str, str]`` (string values only, as in the compose spec)."""
    return _normalise_mapping(value, "label", scalar_values=False)


def _normalise_mapping(value: object, what: str, *, scalar_values: bool) -> dict[str, str]:
    if isinstance(value, dict):
        result: dict[str, str] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValueError(f"{what} name {key!r} must be a string")
            _check_key(key, what)
            result[key] = _scalar_to_str(key, item, what) if scalar_values else _string(key, item)
        return result
    if isinstance(value, list):
        result = {}
        for entry in value:
            if not isinstance(entry, str):
                raise ValueError(f"{what} entry {entry!r} must be a 'KEY=value' string")
            # "KEY" alone means an empty value: there is no host environment to inherit from.
            key, _, item = entry.partition("=")
            _check_key(key, what)
            if key in result:
                raise ValueError(f"duplicate {what} {key!r}")
            result[key] = item
        return result
    raise ValueError(f"expected a mapping or a list of 'KEY=value' strings, got {value!r}")


def _check_key(key: str, what: str) -> None:
    if key == "":
        raise ValueError(f"{what} name must not be empty")
    if "=" in key:
        raise ValueError(f"{what} name {key!r} must not contain '='")


def _string(key: str, item: object) -> str:
    if not isinstance(item, str):
        raise ValueError(f"label {key!r} must have a string value, got {item!r}")
    return item


def _scalar_to_str(key: str, item: object, what: str) -> str:
    if item is None:
        return ""
    if isinstance(item, bool):
        # Checked before int: bool is an int subclass and str(True) would give "True".
        return "true" if item else "false"
    if isinstance(item, str | int):
        return str(item)
    if isinstance(item, float):
        if not math.isfinite(item):
            raise ValueError(f"{what} {key!r} must be a finite number, got {item!r}")
        return repr(item)
    raise ValueError(f"{what} {key!r} must be a string, number, boolean or null, got {item!r}")

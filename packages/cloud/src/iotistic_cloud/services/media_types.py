"""Content-Type checks for the routes that read their body themselves (FastAPI checks the
others): a body is parsed only as what it says it is."""

from __future__ import annotations

from .errors import UnsupportedEncoding


def media_type(content_type: str | None) -> str:
    """``application/json; charset=utf-8`` -> ``application/json`` (empty when absent)."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def require_json(content_type: str | None) -> None:
    """``application/json`` or a ``+json`` type (RFC 6839), else 415."""
    media = media_type(content_type)
    kind, _, subtype = media.partition("/")
    if kind != "application" or not (subtype == "json" or subtype.endswith("+json")):
        problem = f"{media!r} is not supported" if media else "is missing"
        raise UnsupportedEncoding(f"Content-Type {problem} (use application/json)")

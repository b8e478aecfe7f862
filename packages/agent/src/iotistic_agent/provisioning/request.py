"""What a provisioning needs from its caller, checked before anything happens (no I/O)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final
from urllib.parse import urlsplit

from .errors import InvalidProvisioningRequest

MIN_KEY_CHARS: Final = 16
MAX_KEY_CHARS: Final = 256
MAX_TEXT_CHARS: Final = 255


@dataclass(frozen=True)
class ProvisionRequest:
    endpoint: str
    provisioning_key: str = field(repr=False)
    device_name: str | None
    device_type: str | None


def check_key(key: str) -> str:
    # The key is never echoed, not even in an error message.
    key = key.strip()
    if not MIN_KEY_CHARS <= len(key) <= MAX_KEY_CHARS:
        raise InvalidProvisioningRequest(
            f"the provisioning key must be {MIN_KEY_CHARS} to {MAX_KEY_CHARS} characters long"
        )
    if not key.isprintable() or any(c.isspace() for c in key):
        raise InvalidProvisioningRequest(
            "the provisioning key must not contain spaces or control characters"
        )
    return key


def check_endpoint(url: str) -> str:
    url = url.strip()
    problem = InvalidProvisioningRequest("apiEndpoint must be an http:// or https:// URL")
    if not url.isprintable() or any(c.isspace() for c in url):
        raise problem
    try:
        parsed = urlsplit(url)
        parsed.port  # noqa: B018 - raises ValueError on a port out of range
    except ValueError:
        raise problem from None
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise problem
    return url.rstrip("/")


def check_text(name: str, value: str) -> str:
    value = value.strip()
    if not 1 <= len(value) <= MAX_TEXT_CHARS or not value.isprintable():
        raise InvalidProvisioningRequest(
            f"{name} must be 1 to {MAX_TEXT_CHARS} printable characters"
        )
    return value

"""Failures a caller can act on. The API maps each kind to an HTTP status, the CLI to exit 1.

Messages are shown to the caller as they are: they never contain a secret.
"""

from __future__ import annotations

from typing import Final

# Seconds a client is asked to wait (Retry-After) when a service it needs is unavailable.
UNAVAILABLE_RETRY_AFTER_S: Final = 5


class ServiceError(Exception):
    # Sent as Retry-After when set: the request may succeed if repeated after that long.
    retry_after_s: int | None = None

    def __init__(
        self,
        message: str,
        errors: list[dict[str, str]] | None = None,
        *,
        retry_after_s: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        # Per-field problems ({"field", "message"}) when the input had several.
        self.errors = errors
        if retry_after_s is not None:
            self.retry_after_s = retry_after_s


class InvalidInput(ServiceError):
    """The request is malformed or inconsistent (400)."""


class Unauthorized(ServiceError):
    """A key or token is missing, unknown or no longer valid (401)."""


class Forbidden(ServiceError):
    """Authenticated, but not allowed to do this (403)."""


class NotFound(ServiceError):
    """No such device, key or route (404)."""


class Conflict(ServiceError):
    """The request clashes with the current state, e.g. a device registered twice (409)."""


class Gone(ServiceError):
    """A one-time resource was used or expired (410)."""


class TooLarge(ServiceError):
    """A body is over its size limit, before or after decompression (413)."""


class UnsupportedEncoding(ServiceError):
    """A Content-Type or Content-Encoding the cloud does not accept (415)."""


class PreconditionFailed(ServiceError):
    """The resource changed since the caller read it (If-Match did not match, 412)."""


class TooManyRequests(ServiceError):
    """A bounded resource is full, or a rate limit is reached; retry later (429)."""

    retry_after_s: int | None = 60


class Unavailable(ServiceError):
    """A service the cloud depends on (the MQTT broker) cannot be reached; retry later (503)."""

    retry_after_s: int | None = UNAVAILABLE_RETRY_AFTER_S

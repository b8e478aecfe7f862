"""HTTP to the cloud: one session factory (timeout, TLS) and one error type for every failure.

Shared by provisioning and cloud sync, so that both verify TLS the same way and report the
cloud's own error text (`{"error": "..."}`) instead of a bare status code.
"""

from __future__ import annotations

import json
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Final

import aiohttp

DEFAULT_TIMEOUT_S: Final = 15.0
MAX_ERROR_BODY_BYTES: Final = 64 * 1024
MAX_ERROR_TEXT: Final = 300
# Statuses that say "not now" rather than "no": worth the normal retry schedule.
_TRANSIENT_4XX: Final = frozenset({408, 425, 429})
# Where a Retry-After says when to come back: throttled, or the cloud shedding load.
RETRY_AFTER_STATUSES: Final = frozenset({429, 503})


class CloudError(Exception):
    """The cloud refused a request (``status`` set) or could not be reached (``status`` None).

    ``message`` is for people: the cloud's own error text when it sent one."""

    def __init__(
        self, message: str, status: int | None = None, retry_after_s: float | None = None
    ) -> None:
        """``retry_after_s``: the wait the cloud asked for (Retry-After on a 429 or 503)."""
        super().__init__(message)
        self.message = message
        self.status = status
        self.retry_after_s = retry_after_s

    @property
    def refused(self) -> bool:
        """A 4xx that repeating the same request cannot fix (bad or expired key, ...)."""
        return (
            self.status is not None
            and 400 <= self.status < 500
            and (self.status not in _TRANSIENT_4XX)
        )


def tls_setting(ca_cert: str | None, verify: bool) -> ssl.SSLContext | bool:
    """aiohttp's `ssl=` value: False only when verification is explicitly off."""
    if not verify:
        return False
    if ca_cert is None:
        return True  # the system's CA bundle
    try:
        # Only this CA is trusted: a private cloud's certificate authority.
        return ssl.create_default_context(cadata=ca_cert)
    except (ssl.SSLError, ValueError) as exc:
        raise CloudError(f"the cloud's CA certificate cannot be used: {exc}") from None


def cloud_session(
    ca_cert: str | None = None, verify: bool = True, timeout_s: float = DEFAULT_TIMEOUT_S
) -> aiohttp.ClientSession:
    """A session for the cloud API; use as `async with cloud_session(...) as session`."""
    connector = aiohttp.TCPConnector(ssl=tls_setting(ca_cert, verify))
    # trust_env=False: proxies are not part of the configuration, so none is picked up by chance.
    return aiohttp.ClientSession(
        connector=connector, timeout=aiohttp.ClientTimeout(total=timeout_s), trust_env=False
    )


def _clean(text: str) -> str:
    printable = "".join(c if c.isprintable() else " " for c in text).strip()
    return printable if len(printable) <= MAX_ERROR_TEXT else printable[:MAX_ERROR_TEXT] + "..."


def error_text(status: int, body: bytes) -> str:
    """The cloud's `error` (or `detail`) text, else what it sent, else the bare status."""
    try:
        payload = json.loads(body)
    except ValueError:
        payload = None
    if isinstance(payload, dict):
        for field in ("error", "detail", "message"):
            value = payload.get(field)
            if isinstance(value, str) and value.strip():
                return _clean(value)
    text = _clean(body.decode("utf-8", "replace"))
    return f"cloud answered HTTP {status}" + (f": {text}" if text else "")


def retry_after_s(value: str | None, now: datetime) -> float | None:
    """Seconds to wait from a Retry-After value (RFC 9110, 10.2.3): delay-seconds or an
    HTTP-date; None when absent or unreadable (the caller's own backoff applies then)."""
    if value is None:
        return None
    text = value.strip()
    if text.isascii() and text.isdigit():
        return float(text)  # a huge number becomes inf: the caller's maximum bounds it
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None  # an HTTP-date is always GMT; a date without a zone is not one
    return max(0.0, (when - now).total_seconds())


async def cloud_error(response: aiohttp.ClientResponse) -> CloudError:
    body = await response.content.read(MAX_ERROR_BODY_BYTES)
    wait = None
    if response.status in RETRY_AFTER_STATUSES:
        wait = retry_after_s(response.headers.get("Retry-After"), datetime.now(UTC))
    return CloudError(error_text(response.status, body), response.status, wait)


async def raise_for_cloud_error(response: aiohttp.ClientResponse) -> None:
    """Raise a CloudError with the server's text for any status outside 2xx."""
    if not 200 <= response.status < 300:
        raise await cloud_error(response)


@contextmanager
def cloud_errors(url: str) -> Iterator[None]:
    """Map transport failures (refused, DNS, TLS, timeout) to CloudError naming the cloud."""
    try:
        yield
    except aiohttp.ClientConnectorCertificateError as exc:
        raise CloudError(
            f"cloud at {url}: TLS certificate verification failed: {exc.certificate_error}"
        ) from None
    except TimeoutError:
        raise CloudError(f"cloud at {url} did not answer in time") from None
    except aiohttp.ClientError as exc:
        detail = str(exc) or type(exc).__name__
        raise CloudError(f"cloud at {url} is unreachable: {detail}") from None

"""The TLS context for ``mqtts`` (pure: no connection is made here)."""

from __future__ import annotations

import ssl

from .credentials import BrokerSettings


class BrokerTlsError(ValueError):
    """The stored TLS settings cannot be used (for example a CA certificate that is not PEM)."""


def tls_context(broker: BrokerSettings) -> ssl.SSLContext | None:
    """None for plain ``mqtt``. With a CA certificate only that CA is trusted, otherwise the
    system's; the certificate and the host name are checked unless verification is off."""
    if not broker.tls:
        return None
    try:
        context = ssl.create_default_context(cadata=broker.ca_cert or None)
    except (ssl.SSLError, ValueError) as exc:
        raise BrokerTlsError(f"the broker's CA certificate cannot be loaded: {exc}") from None
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if not broker.verify_certificate:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context

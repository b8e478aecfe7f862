"""The Device API for the apps' own services (issue 12, item 6b; balena's
`io.balena.features.supervisor-api`): a service that asks for it gets the API's address and
a key scoped to its app in its environment, and the API listens on the gateway address of
its app's networks (never on an outside interface).

The scoped key can publish sensor readings (`POST /v1/sensors/{metric}`) and read its own
app's state (`GET /v1/apps/{appId}`), nothing else. It is derived from the device API key
(HMAC-SHA256 of the app id), so it is the same every time the container is created and no
new secret is stored; a device API key that changes (factory reset) changes it too.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Mapping
from typing import Final

from iotistic_contracts.labels import DEVICE_API_LABEL

from ..orchestrator.model import ServiceSpec

# Either label asks for it (balena's is accepted so that an app moving over keeps its label).
FEATURE_LABELS: Final = (DEVICE_API_LABEL, "io.balena.features.supervisor-api")
TRUTHY: Final = frozenset({"1", "true", "yes", "on"})

ENV_ADDRESS: Final = "IOTISTIC_DEVICE_API_ADDRESS"
ENV_HOST: Final = "IOTISTIC_DEVICE_API_HOST"
ENV_PORT: Final = "IOTISTIC_DEVICE_API_PORT"
ENV_KEY: Final = "IOTISTIC_DEVICE_API_KEY"
ENV_APP_ID: Final = "IOTISTIC_APP_ID"

_SCOPED_KEY_RE: Final = re.compile(r"app-([0-9]{1,19})-([A-Za-z0-9_-]{43})")


def wants_device_api(spec: ServiceSpec) -> bool:
    labels = dict(spec.labels)
    return any(labels.get(name, "").strip().lower() in TRUTHY for name in FEATURE_LABELS)


def app_key(device_key: str, app_id: int) -> str:
    """The key of one app's services: `app-<appId>-<HMAC-SHA256(device key, app id)>`."""
    digest = hmac.new(device_key.encode(), f"app:{app_id}".encode(), hashlib.sha256).digest()
    return f"app-{app_id}-{base64.urlsafe_b64encode(digest).rstrip(b'=').decode()}"


def app_of_key(device_key: str, given: str) -> int | None:
    """The app a scoped key belongs to, or None when it is not one (compared in constant
    time, like the device key)."""
    match = _SCOPED_KEY_RE.fullmatch(given)
    if match is None:
        return None
    app_id = int(match.group(1))
    return app_id if hmac.compare_digest(app_key(device_key, app_id), given) else None


def service_environment(
    spec: ServiceSpec, gateways: Mapping[str, str], device_key: str, port: int
) -> dict[str, str]:
    """What a new container of `spec` gets added to its environment: nothing unless it asks.
    `gateways`: the gateway address of each network the container joins. With the host's
    network it reaches the API on 127.0.0.1; with no network of its own (`none`, another
    container's namespace) there is no address to give."""
    if not wants_device_api(spec):
        return {}
    if spec.network_mode == "host":
        host = "127.0.0.1"
    else:
        found = [gateways[name] for name in spec.network_names if name in gateways]
        if not found:
            return {}
        host = found[0]
    address_host = f"[{host}]" if ":" in host else host
    return {
        ENV_ADDRESS: f"http://{address_host}:{port}",
        ENV_HOST: host,
        ENV_PORT: str(port),
        ENV_KEY: app_key(device_key, spec.app_id),
        ENV_APP_ID: str(spec.app_id),
    }


def listen_addresses(services: list[ServiceSpec], gateways: Mapping[str, str]) -> frozenset[str]:
    """The gateway addresses the API must listen on: those of the networks that a service
    asking for the API joins (not every app network: no more exposure than asked for)."""
    return frozenset(
        gateways[name]
        for spec in services
        if wants_device_api(spec) and spec.network_mode != "host"
        for name in spec.network_names
        if name in gateways
    )

"""This device's MQTT broker and login, parsed from what provisioning stored (pure)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from iotistic_contracts.mqtt import device_username

DEFAULT_PORTS = {"mqtt": 1883, "mqtts": 8883}


@dataclass(frozen=True)
class BrokerSettings:
    host: str
    port: int
    tls: bool
    ca_cert: str | None = field(default=None, repr=False)  # PEM; None: the system's CAs
    verify_certificate: bool = True

    @property
    def url(self) -> str:
        return f"{'mqtts' if self.tls else 'mqtt'}://{self.host}:{self.port}"


@dataclass(frozen=True)
class MqttCredentials:
    uuid: str
    username: str
    password: str = field(repr=False)
    broker: BrokerSettings

    @property
    def client_id(self) -> str:
        return device_username(self.uuid)


def parse_broker(config_text: str | None, url: str | None) -> BrokerSettings | None:
    """The broker from the stored ``mqttBrokerConfig`` JSON, else from ``mqttBrokerUrl``;
    None when neither names one. TLS verification is off only for an explicit false."""
    config = _json_object(config_text)
    host = config.get("host")
    if isinstance(host, str) and host.strip():
        protocol = config.get("protocol")
        tls = protocol == "mqtts" or config.get("useTls") is True
        ca_cert = config.get("caCert")
        return BrokerSettings(
            host=host.strip(),
            port=_port(config.get("port"), tls),
            tls=tls,
            ca_cert=ca_cert if isinstance(ca_cert, str) and ca_cert.strip() else None,
            verify_certificate=config.get("verifyCertificate") is not False,
        )
    return _from_url(url)


def _from_url(url: str | None) -> BrokerSettings | None:
    if not url:
        return None
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
        return None
    tls = parts.scheme == "mqtts"
    return BrokerSettings(host=parts.hostname, port=port or DEFAULT_PORTS[parts.scheme], tls=tls)


def _port(value: Any, tls: bool) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and 0 < value < 65536:
        return value
    return DEFAULT_PORTS["mqtts" if tls else "mqtt"]


def _json_object(text: str | None) -> Mapping[str, Any]:
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}

"""Settings from the environment, checked once at start-up with messages naming the variable."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

DEFAULT_DATA_DIR: Final = Path("data/cloud")
DEFAULT_MQTT_BROKER_URL: Final = "mqtt://127.0.0.1:1883"
DEFAULT_OFFLINE_AFTER_S: Final = 60
DEFAULT_KEY_EXCHANGE_TTL_S: Final = 600
MIN_ADMIN_TOKEN_CHARS: Final = 16
_MQTT_DEFAULT_PORTS: Final = {"mqtt": 1883, "mqtts": 8883}


class SettingsError(ValueError):
    """A setting is missing or invalid; the message names the variable, never a secret."""


@dataclass(frozen=True)
class MqttBroker:
    url: str
    protocol: str
    host: str
    port: int
    ca_cert: str | None


@dataclass(frozen=True)
class Settings:
    database_url: str
    data_dir: Path
    admin_token: str | None
    public_url: str | None
    mqtt: MqttBroker
    offline_after_s: int
    key_exchange_ttl_s: int

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, cwd: Path | None = None) -> Settings:
        env = os.environ if env is None else env
        base = Path.cwd() if cwd is None else cwd
        data_dir = base / Path(env.get("CLOUD_DATA_DIR") or DEFAULT_DATA_DIR)
        raw_url = env.get("DATABASE_URL") or f"sqlite:///{data_dir / 'cloud.sqlite'}"
        admin_token = env.get("ADMIN_TOKEN") or None
        if admin_token is not None and len(admin_token) < MIN_ADMIN_TOKEN_CHARS:
            raise SettingsError(f"ADMIN_TOKEN must be at least {MIN_ADMIN_TOKEN_CHARS} characters")
        return cls(
            database_url=database_url(raw_url),
            data_dir=data_dir.resolve(),
            admin_token=admin_token,
            public_url=_public_url(env.get("CLOUD_PUBLIC_URL") or None),
            mqtt=mqtt_broker(
                env.get("MQTT_BROKER_URL") or DEFAULT_MQTT_BROKER_URL,
                env.get("MQTT_CA_CERT_FILE") or None,
            ),
            offline_after_s=_positive_int(env, "DEVICE_OFFLINE_AFTER_S", DEFAULT_OFFLINE_AFTER_S),
            key_exchange_ttl_s=_positive_int(env, "KEY_EXCHANGE_TTL_S", DEFAULT_KEY_EXCHANGE_TTL_S),
        )


def database_url(url: str) -> str:
    """Map ``sqlite://`` and ``postgresql://`` to their async drivers (aiosqlite, asyncpg)."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise SettingsError("DATABASE_URL must look like sqlite:///path or postgresql://host/db")
    scheme = scheme.lower()
    if scheme in ("sqlite", "sqlite+aiosqlite"):
        if rest in ("", "/") or rest.startswith("/:memory:"):
            # Every pooled connection would see its own empty database.
            raise SettingsError("DATABASE_URL: an in-memory SQLite database is not supported")
        return f"sqlite+aiosqlite://{rest}"
    if scheme in ("postgresql", "postgres", "postgresql+asyncpg"):
        return _asyncpg_query(f"postgresql+asyncpg://{rest}")
    raise SettingsError(
        f"DATABASE_URL: unsupported scheme {scheme!r} (use sqlite:// or postgresql://)"
    )


def _asyncpg_query(url: str) -> str:
    # libpq spells it sslmode; SQLAlchemy's asyncpg dialect passes ssl= to asyncpg.
    parts = urlsplit(url)
    query = [("ssl" if key == "sslmode" else key, value) for key, value in parse_qsl(parts.query)]
    return urlunsplit(parts._replace(query=urlencode(query)))


def mqtt_broker(url: str, ca_cert_file: str | None) -> MqttBroker:
    parts = urlsplit(url)
    protocol = parts.scheme.lower()
    if protocol not in _MQTT_DEFAULT_PORTS:
        raise SettingsError("MQTT_BROKER_URL must start with mqtt:// or mqtts://")
    try:
        port = parts.port or _MQTT_DEFAULT_PORTS[protocol]
    except ValueError:
        raise SettingsError("MQTT_BROKER_URL has an invalid port") from None
    if not parts.hostname:
        raise SettingsError("MQTT_BROKER_URL has no host")
    ca_cert = None
    if ca_cert_file is not None:
        try:
            ca_cert = Path(ca_cert_file).read_text(encoding="ascii")
        except (OSError, UnicodeDecodeError) as exc:
            raise SettingsError(f"MQTT_CA_CERT_FILE cannot be read: {exc}") from None
        if "-----BEGIN CERTIFICATE-----" not in ca_cert:
            raise SettingsError("MQTT_CA_CERT_FILE is not a PEM certificate")
    host = parts.hostname
    return MqttBroker(
        url=f"{protocol}://{_url_host(host)}:{port}",
        protocol=protocol,
        host=host,
        port=port,
        ca_cert=ca_cert,
    )


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _public_url(value: str | None) -> str | None:
    if value is None:
        return None
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise SettingsError("CLOUD_PUBLIC_URL must be an http:// or https:// URL")
    return value.rstrip("/")


def _positive_int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw.strip())
    except ValueError:
        raise SettingsError(f"{name} must be a whole number of seconds, got {raw!r}") from None
    if not 1 <= value <= 10 * 365 * 24 * 3600:
        raise SettingsError(f"{name} must be between 1 and 315360000 seconds, got {value}")
    return value

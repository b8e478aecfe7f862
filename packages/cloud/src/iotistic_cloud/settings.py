"""Settings from the environment, checked once at start-up with messages naming the variable."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from iotistic_contracts.mqtt import CLOUD_MQTT_USERNAME

DEFAULT_DATA_DIR: Final = Path("data/cloud")
DEFAULT_MQTT_BROKER_URL: Final = "mqtt://127.0.0.1:1883"
DEFAULT_OFFLINE_AFTER_S: Final = 60
DEFAULT_KEY_EXCHANGE_TTL_S: Final = 600
MAX_SECONDS: Final = 10 * 365 * 24 * 3600  # ten years: a bound on any duration setting
DEFAULT_LOG_RETENTION_DAYS: Final = 7
DEFAULT_LOG_MAX_RECORDS_PER_DEVICE: Final = 100_000
MIN_ADMIN_TOKEN_CHARS: Final = 16
DEFAULT_DATABASE_POOL_SIZE: Final = 20
# How long a request waits for a pooled connection (PostgreSQL) or the write lock (SQLite)
# before it is answered 503: under overload a short wait sheds load instead of queueing it.
DEFAULT_DATABASE_WAIT_TIMEOUT_S: Final = 5
_MQTT_DEFAULT_PORTS: Final = {"mqtt": 1883, "mqtts": 8883}
DEFAULT_MQTT_USERNAME: Final = CLOUD_MQTT_USERNAME
_TRUE: Final = frozenset({"1", "true", "yes", "on"})
_FALSE: Final = frozenset({"0", "false", "no", "off"})


class SettingsError(ValueError):
    """A setting is missing or invalid; the message names the variable, never a secret."""


@dataclass(frozen=True)
class MqttBroker:
    url: str
    protocol: str
    host: str
    port: int
    ca_cert: str | None
    # Sent to devices as brokerConfig.verifyCertificate (MQTT_VERIFY_CERTIFICATE).
    verify_certificate: bool = True


@dataclass(frozen=True)
class MqttAdmin:
    """How the cloud itself connects to the broker to manage devices (MQTT_PASSWORD set)."""

    url: str
    protocol: str
    host: str
    port: int
    username: str
    password: str = field(repr=False)
    # PEM file of the CA that signed the broker's certificate (mqtts only); None: system CAs.
    ca_cert_file: str | None = None

    @property
    def use_tls(self) -> bool:
        return self.protocol == "mqtts"


@dataclass(frozen=True)
class Settings:
    database_url: str
    data_dir: Path
    admin_token: str | None
    public_url: str | None
    mqtt: MqttBroker
    offline_after_s: int
    key_exchange_ttl_s: int
    # None: broker management is off (no MQTT_PASSWORD); devices get credentials all the same.
    mqtt_admin: MqttAdmin | None = None
    # Device logs: kept this many days after they arrive, at most this many per device.
    log_retention_days: int = DEFAULT_LOG_RETENTION_DAYS
    log_max_records_per_device: int = DEFAULT_LOG_MAX_RECORDS_PER_DEVICE
    database_pool_size: int = DEFAULT_DATABASE_POOL_SIZE
    database_wait_timeout_s: int = DEFAULT_DATABASE_WAIT_TIMEOUT_S

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
                verify_certificate=_bool(env, "MQTT_VERIFY_CERTIFICATE", True),
            ),
            offline_after_s=_bounded_int(
                env, "DEVICE_OFFLINE_AFTER_S", DEFAULT_OFFLINE_AFTER_S, MAX_SECONDS, "seconds"
            ),
            key_exchange_ttl_s=_bounded_int(
                env, "KEY_EXCHANGE_TTL_S", DEFAULT_KEY_EXCHANGE_TTL_S, MAX_SECONDS, "seconds"
            ),
            mqtt_admin=mqtt_admin_from_env(env),
            log_retention_days=_bounded_int(
                env, "LOG_RETENTION_DAYS", DEFAULT_LOG_RETENTION_DAYS, 3650
            ),
            log_max_records_per_device=_bounded_int(
                env, "LOG_MAX_RECORDS_PER_DEVICE", DEFAULT_LOG_MAX_RECORDS_PER_DEVICE, 10**9
            ),
            database_pool_size=_bounded_int(
                env, "DATABASE_POOL_SIZE", DEFAULT_DATABASE_POOL_SIZE, 1000
            ),
            database_wait_timeout_s=_bounded_int(
                env, "DATABASE_WAIT_TIMEOUT_S", DEFAULT_DATABASE_WAIT_TIMEOUT_S, 300, "seconds"
            ),
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


def _mqtt_url(url: str, variable: str) -> tuple[str, str, int]:
    parts = urlsplit(url)
    protocol = parts.scheme.lower()
    if protocol not in _MQTT_DEFAULT_PORTS:
        raise SettingsError(f"{variable} must start with mqtt:// or mqtts://")
    try:
        port = parts.port or _MQTT_DEFAULT_PORTS[protocol]
    except ValueError:
        raise SettingsError(f"{variable} has an invalid port") from None
    if not parts.hostname:
        raise SettingsError(f"{variable} has no host")
    return protocol, parts.hostname, port


def _read_pem(path: str, variable: str) -> str:
    try:
        pem = Path(path).read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as exc:
        raise SettingsError(f"{variable} cannot be read: {exc}") from None
    if "-----BEGIN CERTIFICATE-----" not in pem:
        raise SettingsError(f"{variable} is not a PEM certificate")
    return pem


def mqtt_broker(
    url: str, ca_cert_file: str | None, *, verify_certificate: bool = True
) -> MqttBroker:
    protocol, host, port = _mqtt_url(url, "MQTT_BROKER_URL")
    ca_cert = None if ca_cert_file is None else _read_pem(ca_cert_file, "MQTT_CA_CERT_FILE")
    return MqttBroker(
        url=f"{protocol}://{_url_host(host)}:{port}",
        protocol=protocol,
        host=host,
        port=port,
        ca_cert=ca_cert,
        verify_certificate=verify_certificate,
    )


def mqtt_admin(
    url: str,
    password: str,
    username: str = DEFAULT_MQTT_USERNAME,
    ca_cert_file: str | None = None,
) -> MqttAdmin:
    protocol, host, port = _mqtt_url(url, "MQTT_ADMIN_URL")
    if ca_cert_file is not None:
        _read_pem(ca_cert_file, "MQTT_ADMIN_CA_CERT_FILE")
    return MqttAdmin(
        url=f"{protocol}://{_url_host(host)}:{port}",
        protocol=protocol,
        host=host,
        port=port,
        username=username,
        password=password,
        ca_cert_file=ca_cert_file,
    )


def mqtt_admin_from_env(env: Mapping[str, str]) -> MqttAdmin | None:
    """Broker management is on when MQTT_PASSWORD is set. The cloud connects to
    MQTT_ADMIN_URL (default: MQTT_BROKER_URL); for mqtts it trusts MQTT_ADMIN_CA_CERT_FILE,
    else MQTT_CA_CERT_FILE, else the system's CAs, and always verifies the certificate."""
    password = env.get("MQTT_PASSWORD") or None
    if password is None:
        return None
    url = env.get("MQTT_ADMIN_URL") or env.get("MQTT_BROKER_URL") or DEFAULT_MQTT_BROKER_URL
    ca_file = env.get("MQTT_ADMIN_CA_CERT_FILE") or env.get("MQTT_CA_CERT_FILE") or None
    return mqtt_admin(
        url,
        password,
        username=env.get("MQTT_USERNAME") or DEFAULT_MQTT_USERNAME,
        ca_cert_file=ca_file,
    )


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = (env.get(name) or "").strip().lower()
    if raw == "":
        return default
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise SettingsError(f"{name} must be true or false, got {raw!r}")


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _public_url(value: str | None) -> str | None:
    if value is None:
        return None
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise SettingsError("CLOUD_PUBLIC_URL must be an http:// or https:// URL")
    return value.rstrip("/")


def _bounded_int(
    env: Mapping[str, str], name: str, default: int, maximum: int, unit: str = ""
) -> int:
    """A whole number from 1 to ``maximum`` (in ``unit``, named in the messages)."""
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    suffix = f" {unit}" if unit else ""
    try:
        value = int(raw.strip())
    except ValueError:
        raise SettingsError(f"{name} must be a whole number{suffix}, got {raw!r}") from None
    if not 1 <= value <= maximum:
        raise SettingsError(f"{name} must be between 1 and {maximum}{suffix}, got {value}")
    return value

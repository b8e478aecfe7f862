"""Settings from the environment, checked once at start-up with messages naming the variable.

``CloudEnvironment`` is the pydantic model of the variables (names, types, defaults, bounds,
URL syntax); ``Settings`` is what the cloud runs with, resolved from it (paths made
absolute, database URLs mapped to their async drivers, CA files read). Every problem is a
``SettingsError`` naming the variable; a secret's value is never part of a message.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from iotistic_contracts.mqtt import CLOUD_MQTT_USERNAME
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
)

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
# Requests a minute each device (by its API key), and each provisioning key on the key
# exchange, may make on average; as many at once (0: off). Per process.
DEFAULT_DEVICE_RATE_LIMIT_PER_MIN: Final = 300
DEFAULT_PROVISIONING_RATE_LIMIT_PER_MIN: Final = 120
# Requests in progress at once before new ones are answered 503 at once (0: off). One
# process serves a few hundred requests a second: 64 in progress already keeps it busy, and
# more only makes every answer later (bench/README.md, overload).
DEFAULT_MAX_CONCURRENT_REQUESTS: Final = 64
DEFAULT_OVERLOAD_RETRY_AFTER_S: Final = 10
DEFAULT_MQTT_USERNAME: Final = CLOUD_MQTT_USERNAME
POSTGRES_EXTRA: Final = "iotistic-cloud[postgres]"
_MQTT_DEFAULT_PORTS: Final = {"mqtt": 1883, "mqtts": 8883}


class SettingsError(ValueError):
    """A setting is missing or invalid; the message names the variable, never a secret."""


class CloudEnvironment(BaseModel):
    """The cloud's environment variables, by name. An empty value counts as unset."""

    model_config = ConfigDict(frozen=True, extra="ignore", hide_input_in_errors=True)

    DATABASE_URL: str | None = None
    CLOUD_DATA_DIR: Path = DEFAULT_DATA_DIR
    ADMIN_TOKEN: SecretStr | None = Field(default=None, min_length=MIN_ADMIN_TOKEN_CHARS)
    CLOUD_PUBLIC_URL: str | None = None
    MQTT_BROKER_URL: str = DEFAULT_MQTT_BROKER_URL
    MQTT_CA_CERT_FILE: str | None = None
    MQTT_VERIFY_CERTIFICATE: bool = True
    # Set, it turns broker management on.
    MQTT_PASSWORD: SecretStr | None = None
    MQTT_USERNAME: str = DEFAULT_MQTT_USERNAME
    MQTT_ADMIN_URL: str | None = None
    MQTT_ADMIN_CA_CERT_FILE: str | None = None
    DEVICE_OFFLINE_AFTER_S: int = Field(default=DEFAULT_OFFLINE_AFTER_S, ge=1, le=MAX_SECONDS)
    KEY_EXCHANGE_TTL_S: int = Field(default=DEFAULT_KEY_EXCHANGE_TTL_S, ge=1, le=MAX_SECONDS)
    LOG_RETENTION_DAYS: int = Field(default=DEFAULT_LOG_RETENTION_DAYS, ge=1, le=3650)
    LOG_MAX_RECORDS_PER_DEVICE: int = Field(
        default=DEFAULT_LOG_MAX_RECORDS_PER_DEVICE, ge=1, le=10**9
    )
    DATABASE_POOL_SIZE: int = Field(default=DEFAULT_DATABASE_POOL_SIZE, ge=1, le=1000)
    DATABASE_WAIT_TIMEOUT_S: int = Field(default=DEFAULT_DATABASE_WAIT_TIMEOUT_S, ge=1, le=300)
    DEVICE_RATE_LIMIT_PER_MIN: int = Field(
        default=DEFAULT_DEVICE_RATE_LIMIT_PER_MIN, ge=0, le=1_000_000
    )
    PROVISIONING_RATE_LIMIT_PER_MIN: int = Field(
        default=DEFAULT_PROVISIONING_RATE_LIMIT_PER_MIN, ge=0, le=1_000_000
    )
    MAX_CONCURRENT_REQUESTS: int = Field(default=DEFAULT_MAX_CONCURRENT_REQUESTS, ge=0, le=100_000)
    OVERLOAD_RETRY_AFTER_S: int = Field(default=DEFAULT_OVERLOAD_RETRY_AFTER_S, ge=1, le=3600)

    @field_validator("DATABASE_URL")
    @classmethod
    def _database_url(cls, value: str | None) -> str | None:
        return None if value is None else database_url(value)

    @field_validator("CLOUD_PUBLIC_URL")
    @classmethod
    def _public_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("CLOUD_PUBLIC_URL must be an http:// or https:// URL")
        return value.rstrip("/")

    @field_validator("MQTT_BROKER_URL", "MQTT_ADMIN_URL")
    @classmethod
    def _mqtt_url(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None:
            mqtt_url(value, str(info.field_name))
        return value

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> CloudEnvironment:
        given = {
            name: value
            for name, value in env.items()
            if name in cls.model_fields and value.strip() != ""
        }
        try:
            return cls.model_validate(given)
        except ValidationError as exc:
            raise _named(exc, given) from None


def _named(exc: ValidationError, given: Mapping[str, str]) -> SettingsError:
    """The first problem as one sentence naming its variable (the input only where it
    cannot be a secret: numbers and booleans)."""
    error = exc.errors(include_url=False, include_input=False)[0]
    name = str(error["loc"][0])
    kind, context = error["type"], error.get("ctx", {})
    unit = " seconds" if name.endswith("_S") else ""
    if kind == "value_error":
        return SettingsError(str(context["error"]))
    if kind == "int_parsing":
        what = "a whole number of seconds" if unit else "a whole number"
        return SettingsError(f"{name} must be {what}, got {given[name]!r}")
    if kind in ("greater_than_equal", "less_than_equal"):
        bounds = {type(m).__name__: m for m in CloudEnvironment.model_fields[name].metadata}
        low, high = bounds["Ge"].ge, bounds["Le"].le
        return SettingsError(
            f"{name} must be between {low} and {high}{unit}, got {given[name].strip()}"
        )
    if kind == "bool_parsing":
        return SettingsError(f"{name} must be true or false, got {given[name]!r}")
    if kind == "too_short":
        return SettingsError(f"{name} must be at least {context['min_length']} characters")
    return SettingsError(f"{name}: {error['msg']}")


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
    device_rate_limit_per_min: int = DEFAULT_DEVICE_RATE_LIMIT_PER_MIN
    provisioning_rate_limit_per_min: int = DEFAULT_PROVISIONING_RATE_LIMIT_PER_MIN
    max_concurrent_requests: int = DEFAULT_MAX_CONCURRENT_REQUESTS
    overload_retry_after_s: int = DEFAULT_OVERLOAD_RETRY_AFTER_S

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, cwd: Path | None = None) -> Settings:
        variables = CloudEnvironment.from_env(os.environ if env is None else env)
        return cls.resolve(variables, Path.cwd() if cwd is None else cwd)

    @classmethod
    def resolve(cls, env: CloudEnvironment, cwd: Path) -> Settings:
        """What the cloud runs with: relative paths from ``cwd``, CA files read, defaults
        that depend on other variables filled in."""
        data_dir = cwd / env.CLOUD_DATA_DIR
        url = env.DATABASE_URL or database_url(f"sqlite:///{data_dir / 'cloud.sqlite'}")
        return cls(
            database_url=url,
            data_dir=data_dir.resolve(),
            admin_token=None if env.ADMIN_TOKEN is None else env.ADMIN_TOKEN.get_secret_value(),
            public_url=env.CLOUD_PUBLIC_URL,
            mqtt=mqtt_broker(
                env.MQTT_BROKER_URL,
                env.MQTT_CA_CERT_FILE,
                verify_certificate=env.MQTT_VERIFY_CERTIFICATE,
            ),
            offline_after_s=env.DEVICE_OFFLINE_AFTER_S,
            key_exchange_ttl_s=env.KEY_EXCHANGE_TTL_S,
            mqtt_admin=_mqtt_admin(env),
            log_retention_days=env.LOG_RETENTION_DAYS,
            log_max_records_per_device=env.LOG_MAX_RECORDS_PER_DEVICE,
            database_pool_size=env.DATABASE_POOL_SIZE,
            database_wait_timeout_s=env.DATABASE_WAIT_TIMEOUT_S,
            device_rate_limit_per_min=env.DEVICE_RATE_LIMIT_PER_MIN,
            provisioning_rate_limit_per_min=env.PROVISIONING_RATE_LIMIT_PER_MIN,
            max_concurrent_requests=env.MAX_CONCURRENT_REQUESTS,
            overload_retry_after_s=env.OVERLOAD_RETRY_AFTER_S,
        )


def database_url(url: str) -> str:
    """Map ``sqlite://`` and ``postgresql://`` to their async drivers (aiosqlite, asyncpg).

    PostgreSQL's driver is the ``postgres`` extra: without it this says so."""
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
        _require_asyncpg()
        return _asyncpg_query(f"postgresql+asyncpg://{rest}")
    raise SettingsError(
        f"DATABASE_URL: unsupported scheme {scheme!r} (use sqlite:// or postgresql://)"
    )


def _require_asyncpg() -> None:
    try:
        importlib.import_module("asyncpg")
    except ImportError:
        raise SettingsError(
            "DATABASE_URL names a PostgreSQL database, but its driver (asyncpg) is not "
            f"installed: install {POSTGRES_EXTRA} (pip install '{POSTGRES_EXTRA}')"
        ) from None


def _asyncpg_query(url: str) -> str:
    # libpq spells it sslmode; SQLAlchemy's asyncpg dialect passes ssl= to asyncpg.
    parts = urlsplit(url)
    query = [("ssl" if key == "sslmode" else key, value) for key, value in parse_qsl(parts.query)]
    return urlunsplit(parts._replace(query=urlencode(query)))


def mqtt_url(url: str, variable: str) -> tuple[str, str, int]:
    """(protocol, host, port) of an ``mqtt://`` or ``mqtts://`` URL."""
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
    protocol, host, port = mqtt_url(url, "MQTT_BROKER_URL")
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
    protocol, host, port = mqtt_url(url, "MQTT_ADMIN_URL")
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


def _mqtt_admin(env: CloudEnvironment) -> MqttAdmin | None:
    """Broker management is on when MQTT_PASSWORD is set. The cloud connects to
    MQTT_ADMIN_URL (default: MQTT_BROKER_URL); for mqtts it trusts MQTT_ADMIN_CA_CERT_FILE,
    else MQTT_CA_CERT_FILE, else the system's CAs, and always verifies the certificate."""
    if env.MQTT_PASSWORD is None:
        return None
    return mqtt_admin(
        env.MQTT_ADMIN_URL or env.MQTT_BROKER_URL,
        env.MQTT_PASSWORD.get_secret_value(),
        username=env.MQTT_USERNAME,
        ca_cert_file=env.MQTT_ADMIN_CA_CERT_FILE or env.MQTT_CA_CERT_FILE,
    )


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host

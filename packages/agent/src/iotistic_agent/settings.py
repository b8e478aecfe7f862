"""Agent settings from the environment, with the spec's names and defaults.

A plain pydantic model read from `os.environ` by field name: pydantic-settings would do the
same but costs a megabyte and two dozen modules at start-up on a device that counts both.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from iotistic_device_paths import database_path
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from .anomaly.config import AnomalyConfig
from .policy.model import device_policy


class AgentSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    # Default: /var/lib/iotistic as root, else the XDG data directory (iotistic_device_paths);
    # never relative to the working directory, where a new folder would mean a new device.
    DATABASE_PATH: Path = Field(default_factory=lambda: database_path(os.environ))
    DEVICE_API_HOST: str = "127.0.0.1"
    DEVICE_API_PORT: int = Field(default=48484, ge=0, le=65535)
    RECONCILIATION_INTERVAL_MS: int = Field(default=30000, ge=100, le=86_400_000)
    LOG_LEVEL: Literal["debug", "info", "warn", "error"] = "info"
    # stderr: text for a terminal, JSON lines otherwise (auto), or forced either way.
    LOG_FORMAT: Literal["auto", "json", "text"] = "auto"
    # <data dir>/logs/agent.log, JSON lines, rotated at LOG_FILE_MAX_BYTES, with
    # LOG_FILE_COUNT older files kept (agent.log.1 ... agent.log.N).
    LOG_FILE_ENABLED: bool = True
    LOG_FILE_MAX_BYTES: int = Field(default=5 * 1024 * 1024, ge=4096, le=1024 * 1024 * 1024)
    LOG_FILE_COUNT: int = Field(default=3, ge=1, le=100)
    DEVICE_NAME: str | None = Field(default=None, max_length=128)
    DOCKER_HOST: str | None = None
    CLOUD_API_ENDPOINT: str | None = None
    # Provisioning. The key is a secret: SecretStr keeps it out of repr, str() and dumps.
    PROVISIONING_API_KEY: SecretStr | None = Field(default=None, repr=False)
    REQUIRE_PROVISIONING: bool = False
    DEVICE_TYPE: str | None = Field(default=None, min_length=1, max_length=255)
    # Cloud sync (spec defaults). The backoff and circuit figures are the spec's too; they
    # are settable so that a test (or an impatient fleet) can shorten them.
    POLL_INTERVAL_MS: int = Field(default=60000, ge=100, le=86_400_000)
    REPORT_INTERVAL_MS: int = Field(default=10000, ge=100, le=86_400_000)
    METRICS_INTERVAL_MS: int = Field(default=300000, ge=100, le=86_400_000)
    CLOUD_BACKOFF_BASE_MS: int = Field(default=15000, ge=10, le=3_600_000)
    CLOUD_BACKOFF_MAX_MS: int = Field(default=900000, ge=10, le=86_400_000)
    CLOUD_CIRCUIT_COOLDOWN_MS: int = Field(default=300000, ge=10, le=86_400_000)
    REPORT_QUEUE_MAX: int = Field(default=1000, ge=1, le=1_000_000)
    # Log shipping to the cloud (spec names and defaults), while provisioned.
    LOG_COMPRESSION: bool = True
    CLOUD_LOG_UPLOAD_INTERVAL: int = Field(default=60000, ge=100, le=86_400_000)
    CLOUD_LOG_SAMPLING_RATE_DEBUG: float = Field(default=0.1, ge=0.0, le=1.0)
    CLOUD_LOG_SAMPLING_RATE_INFO: float = Field(default=0.5, ge=0.0, le=1.0)
    CLOUD_LOG_SAMPLING_RATE_WARN: float = Field(default=1.0, ge=0.0, le=1.0)
    CLOUD_LOG_SAMPLING_RATE_ERROR: float = Field(default=1.0, ge=0.0, le=1.0)
    # Records kept on disk on their way to the cloud; beyond it the oldest are dropped.
    LOG_OUTBOX_MAX_RECORDS: int = Field(default=200_000, ge=1000, le=10_000_000)
    LOG_OUTBOX_MAX_BYTES: int = Field(
        default=64 * 1024 * 1024, ge=1024 * 1024, le=100 * 1024 * 1024 * 1024
    )
    # System metrics: list the top 10 processes. Unset: the spec's platform default (on,
    # except on Windows where listing processes is slow); true/false forces it.
    COLLECT_TOP_PROCESSES: bool | None = None
    # Anomaly detection (the spec's names), kept as text and checked as a whole by
    # AnomalyConfig.from_env, so that the environment and `iotctl config set` agree.
    # How often system metrics are sampled into the detector (not in the spec).
    ANOMALY_SAMPLE_INTERVAL_MS: int = Field(default=10000, ge=100, le=3_600_000)
    ANOMALY_DETECTION_ENABLED: str | None = None
    ANOMALY_WINDOW_SIZE: str | None = None
    ANOMALY_SENSITIVITY: str | None = None
    ANOMALY_DETECTION_Z_THRESHOLD: str | None = None
    ANOMALY_DETECTION_MAD_THRESHOLD: str | None = None
    ANOMALY_DETECTION_RATE_THRESHOLD: str | None = None
    ANOMALY_ML_ENABLED: str | None = None
    # The device policy (docs/agent.md, "Device policy"): what a target may ask of the host.
    # From the environment only: `iotctl config` and the target's `config` cannot change it.
    DEVICE_POLICY_ALLOWED_BIND_PREFIXES: str = ""
    DEVICE_POLICY_ALLOW_DOCKER_SOCKET: bool = False
    DEVICE_POLICY_ALLOW_PRIVILEGED: bool = False
    DEVICE_POLICY_ALLOWED_CAPABILITIES: str = ""
    DEVICE_POLICY_ALLOWED_DEVICES: str = ""
    DEVICE_POLICY_ALLOW_HOST_NETWORK: bool = False
    DEVICE_POLICY_MAX_APPS: int = Field(default=50, ge=1, le=10_000)
    DEVICE_POLICY_MAX_SERVICES_PER_APP: int = Field(default=50, ge=1, le=10_000)
    DEVICE_POLICY_MAX_SERVICES: int = Field(default=100, ge=1, le=10_000)

    @model_validator(mode="after")
    def _anomaly_settings(self) -> AgentSettings:
        anomaly_config(self)  # AnomalyConfigError is a ValueError: reported per setting
        return self

    @model_validator(mode="after")
    def _device_policy(self) -> AgentSettings:
        device_policy(self)  # a ValueError naming the setting
        return self

    @field_validator("CLOUD_API_ENDPOINT", mode="before")
    @classmethod
    def _endpoint(cls, value: object) -> object:
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        if not isinstance(value, str):
            return value
        if not value.strip().isprintable() or any(c.isspace() for c in value.strip()):
            raise ValueError("must be a URL without spaces or control characters")
        parsed = urlsplit(value.strip())
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ValueError("must be an http:// or https:// URL")
        return value.strip().rstrip("/")

    @field_validator("PROVISIONING_API_KEY", "DEVICE_TYPE", "COLLECT_TOP_PROCESSES", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        # `PROVISIONING_API_KEY=` in a compose file means "no key", not an empty one.
        if isinstance(value, str):
            return value.strip() or None
        return value

    @field_validator("REQUIRE_PROVISIONING", mode="before")
    @classmethod
    def _empty_is_false(cls, value: object) -> object:
        if isinstance(value, str):
            return value.strip() or False
        return value

    @field_validator("LOG_FORMAT", mode="before")
    @classmethod
    def _format(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        wanted = value.strip().lower() or "auto"
        if wanted not in ("auto", "json", "text"):
            raise ValueError(f"must be auto, json or text, got {value.strip()[:40]!r}")
        return wanted

    @field_validator("LOG_LEVEL", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        level = value.strip().lower()
        return "warn" if level == "warning" else level

    @field_validator("DEVICE_NAME", "DEVICE_TYPE")
    @classmethod
    def _printable(cls, value: str | None) -> str | None:
        if value is not None and not value.isprintable():
            raise ValueError("must contain printable characters only")
        return value

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> AgentSettings:
        env = os.environ if environ is None else environ
        values: dict[str, object] = {name: env[name] for name in cls.model_fields if name in env}
        # Found from the same environment (HOME, XDG_DATA_HOME), relative to the working
        # directory only when DATABASE_PATH itself is relative: iotctl does the same.
        values["DATABASE_PATH"] = database_path(env)
        return cls.model_validate(values)

    @property
    def data_dir(self) -> Path:
        return self.DATABASE_PATH.parent


ANOMALY_SETTINGS: tuple[str, ...] = tuple(
    name
    for name in AgentSettings.model_fields
    if name.startswith("ANOMALY_") and name != "ANOMALY_SAMPLE_INTERVAL_MS"
)


def anomaly_config(settings: AgentSettings) -> AnomalyConfig:
    values = {name: getattr(settings, name) for name in ANOMALY_SETTINGS}
    return AnomalyConfig.from_env({k: v for k, v in values.items() if v is not None})

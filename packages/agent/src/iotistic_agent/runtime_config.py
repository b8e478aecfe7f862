"""Settings that can change while the agent runs (`iotctl config`), over the environment.

Precedence: a value set through the Device API (persisted) > the environment > the default.
Every change is validated like the environment is, then applied at once.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from iotistic_device_paths import LOCATION_VARIABLES
from pydantic import ValidationError

from .settings import AgentSettings
from .store.config_store import ConfigStore

DESCRIPTIONS = {
    "LOG_LEVEL": "agent log level: debug, info, warn or error",
    "LOG_FORMAT": "agent log format on stderr: auto (text on a terminal), json or text",
    "LOG_FILE_ENABLED": "write <data dir>/logs/agent.log (true or false)",
    "LOG_FILE_MAX_BYTES": "size at which agent.log is rotated, in bytes (>= 4096)",
    "LOG_FILE_COUNT": "rotated agent.log files kept (1 to 100)",
    "RECONCILIATION_INTERVAL_MS": "milliseconds between two reconciliation passes (>= 100)",
    "CLOUD_API_ENDPOINT": "cloud API URL (http or https), empty for none",
    "DEVICE_NAME": "human-readable device name",
    "POLL_INTERVAL_MS": "milliseconds between two polls of the cloud's target state (>= 100)",
    "REPORT_INTERVAL_MS": "milliseconds between two state reports to the cloud (>= 100)",
    "METRICS_INTERVAL_MS": "milliseconds between two full state reports to the cloud (>= 100)",
    "LOG_COMPRESSION": "gzip log uploads to the cloud (true or false)",
    "CLOUD_LOG_UPLOAD_INTERVAL": "milliseconds between two log uploads to the cloud (>= 100)",
    "CLOUD_LOG_SAMPLING_RATE_DEBUG": "share of the agent's debug records shipped (0 to 1)",
    "CLOUD_LOG_SAMPLING_RATE_INFO": "share of the agent's info records shipped (0 to 1)",
    "CLOUD_LOG_SAMPLING_RATE_WARN": "warnings shipped (0 to 1; all of them whatever the value)",
    "CLOUD_LOG_SAMPLING_RATE_ERROR": "errors shipped (0 to 1; all of them whatever the value)",
    "ANOMALY_DETECTION_ENABLED": "anomaly detection on or off (true or false)",
    "ANOMALY_WINDOW_SIZE": "points per metric the detectors look back on",
    "ANOMALY_SENSITIVITY": "low, medium or high (scales every threshold)",
    "ANOMALY_DETECTION_Z_THRESHOLD": "z-score threshold in standard deviations",
    "ANOMALY_DETECTION_MAD_THRESHOLD": "MAD threshold in robust standard deviations",
    "ANOMALY_DETECTION_RATE_THRESHOLD": "rate-of-change threshold in percent",
    "ANOMALY_ML_ENABLED": "the optional LSTM forecaster (needs iotistic-agent[ml])",
}

Applier = Callable[[AgentSettings], None]


class UnknownConfigKey(KeyError):
    pass


class InvalidConfigValue(ValueError):
    pass


@dataclass(frozen=True)
class ConfigEntry:
    key: str
    value: str
    default: str
    source: str  # "default" | "environment" | "override"
    description: str

    def as_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "value": self.value,
            "default": self.default,
            "source": self.source,
            "description": self.description,
        }


def _text(value: object) -> str:
    return "" if value is None else str(value)


class RuntimeConfig:
    def __init__(self, environ: Mapping[str, str], store: ConfigStore) -> None:
        self._environ = {
            k: v
            for k, v in environ.items()
            if k in AgentSettings.model_fields or k in LOCATION_VARIABLES
        }
        self._store = store
        self._apply: Applier | None = None
        self.settings = self._effective()

    def subscribe(self, apply: Applier) -> None:
        """Called with the new settings after every change."""
        self._apply = apply

    def _effective(self) -> AgentSettings:
        return AgentSettings.from_env({**self._environ, **self._store.overrides()})

    def entries(self) -> dict[str, ConfigEntry]:
        return {key: self.get(key) for key in DESCRIPTIONS}

    def get(self, key: str) -> ConfigEntry:
        if key not in DESCRIPTIONS:
            raise UnknownConfigKey(key)
        overrides = self._store.overrides()
        field = AgentSettings.model_fields[key]
        default = field.get_default(call_default_factory=True)
        source = (
            "override" if key in overrides else "environment" if key in self._environ else "default"
        )
        value = getattr(self.settings, key)
        return ConfigEntry(key, _text(value), _text(default), source, DESCRIPTIONS[key])

    def set(self, key: str, value: str) -> ConfigEntry:
        if key not in DESCRIPTIONS:
            raise UnknownConfigKey(key)
        try:
            candidate = AgentSettings.from_env(
                {**self._environ, **self._store.overrides(), key: value}
            )
        except ValidationError as exc:
            reason = "; ".join(e["msg"] for e in exc.errors())
            raise InvalidConfigValue(f"invalid value for {key}: {reason}") from exc
        self._store.set(key, value)
        self._switch_to(candidate)
        return self.get(key)

    def reset(self) -> dict[str, ConfigEntry]:
        self._store.clear()
        self._switch_to(self._effective())
        return self.entries()

    def _switch_to(self, settings: AgentSettings) -> None:
        self.settings = settings
        if self._apply is not None:
            self._apply(settings)

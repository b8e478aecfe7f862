"""Wire models shared by the Iotistic agent and cloud."""

from .compose import (
    PortMapping,
    VolumeMount,
    parse_cpu,
    parse_duration,
    parse_memory,
    parse_port,
    parse_volume,
)
from .errors import TargetStateError, parse_target_state
from .labels import (
    HANDOVER_TIMEOUT_LABEL,
    RESERVED_LABEL_PREFIX,
    UPDATE_STRATEGY_LABEL,
    USER_SETTABLE_LABELS,
)
from .target_state import (
    App,
    Healthcheck,
    NetworkAttachment,
    Resources,
    ResourceValues,
    Service,
    ServiceConfig,
    ServiceState,
    TargetState,
    UpdateStrategy,
)
from .update_strategy import DEFAULT_UPDATE_STRATEGY, UPDATE_STRATEGIES

__all__ = [
    "DEFAULT_UPDATE_STRATEGY",
    "HANDOVER_TIMEOUT_LABEL",
    "RESERVED_LABEL_PREFIX",
    "UPDATE_STRATEGIES",
    "UPDATE_STRATEGY_LABEL",
    "USER_SETTABLE_LABELS",
    "App",
    "Healthcheck",
    "NetworkAttachment",
    "PortMapping",
    "ResourceValues",
    "Resources",
    "Service",
    "ServiceConfig",
    "ServiceState",
    "TargetState",
    "TargetStateError",
    "UpdateStrategy",
    "VolumeMount",
    "parse_cpu",
    "parse_duration",
    "parse_memory",
    "parse_port",
    "parse_target_state",
    "parse_volume",
]

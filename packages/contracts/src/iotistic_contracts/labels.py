"""Rules for service labels: the ``io.iotistic.`` namespace belongs to the agent."""

from __future__ import annotations

from typing import Final

from .compose import parse_duration
from .update_strategy import UPDATE_STRATEGIES, is_update_strategy

RESERVED_LABEL_PREFIX: Final = "io.iotistic."
UPDATE_STRATEGY_LABEL: Final = "io.iotistic.update-strategy"
HANDOVER_TIMEOUT_LABEL: Final = "io.iotistic.handover-timeout"
# A service that sets it to true gets the Device API's address and a key scoped to its app.
DEVICE_API_LABEL: Final = "io.iotistic.features.device-api"
FLAG_VALUES: Final = frozenset({"1", "0", "true", "false", "yes", "no", "on", "off"})
# The agent adopts containers by its own labels, so users may only set these knobs.
USER_SETTABLE_LABELS: Final = frozenset(
    {UPDATE_STRATEGY_LABEL, HANDOVER_TIMEOUT_LABEL, DEVICE_API_LABEL}
)


def check_labels(labels: dict[str, str]) -> dict[str, str]:
    """Reject reserved labels and bad values of the user-settable ones; return ``labels``."""
    for key in labels:
        if key.startswith(RESERVED_LABEL_PREFIX) and key not in USER_SETTABLE_LABELS:
            allowed = ", ".join(repr(label) for label in sorted(USER_SETTABLE_LABELS))
            raise ValueError(
                f"label {key!r} is reserved for the agent (only {allowed} may be set in the "
                f"'{RESERVED_LABEL_PREFIX}' namespace)"
            )
    strategy = labels.get(UPDATE_STRATEGY_LABEL)
    if strategy is not None and not is_update_strategy(strategy):
        raise ValueError(
            f"label {UPDATE_STRATEGY_LABEL!r} has unknown value {strategy!r} "
            f"(expected one of {', '.join(UPDATE_STRATEGIES)})"
        )
    flag = labels.get(DEVICE_API_LABEL)
    if flag is not None and flag.strip().lower() not in FLAG_VALUES:
        raise ValueError(f"label {DEVICE_API_LABEL!r} must be true or false, got {flag!r}")
    timeout = labels.get(HANDOVER_TIMEOUT_LABEL)
    if timeout is not None:
        try:
            parse_duration(timeout)
        except ValueError as exc:
            raise ValueError(f"label {HANDOVER_TIMEOUT_LABEL!r}: {exc}") from None
    return labels

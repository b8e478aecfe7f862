"""How a service's container is replaced when its configuration changes."""

from __future__ import annotations

from typing import Final, Literal, TypeGuard, get_args

UpdateStrategy = Literal[
    "download-then-kill", "kill-then-download", "delete-then-download", "hand-over"
]

UPDATE_STRATEGIES: Final[tuple[UpdateStrategy, ...]] = get_args(UpdateStrategy)
# Safest for availability: the new image is on disk before the old container goes away.
DEFAULT_UPDATE_STRATEGY: Final[UpdateStrategy] = "download-then-kill"


def is_update_strategy(value: object) -> TypeGuard[UpdateStrategy]:
    return isinstance(value, str) and value in UPDATE_STRATEGIES

"""Which of the engine's managed objects are this agent's (issue 12, item 5b).

Several agents may share one engine (a second installation, a test agent next to the real
one): each owns only the containers, networks and volumes labelled with its own device
UUID, so one agent's target never removes another's apps. Objects made by a release before
the label carry none: the agent whose database predates the label adopts them, a new agent
never does (`store/ownership.py` decides which one it is, once). An adopted container gets
the label when it is next recreated.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ..orchestrator.model import LABEL_DEVICE_UUID, LABEL_MANAGED


@dataclass(frozen=True)
class Ownership:
    device_uuid: str
    adopt_unlabelled: bool = False

    @property
    def labels(self) -> dict[str, str]:
        """The labels that mark an object as this agent's."""
        return {LABEL_MANAGED: "true", LABEL_DEVICE_UUID: self.device_uuid}

    def owns(self, labels: Mapping[str, str] | None) -> bool:
        return self.refusal(labels) is None

    def refusal(self, labels: Mapping[str, str] | None) -> str | None:
        """Why an object with these labels is not this agent's; None when it is."""
        labels = labels or {}
        if labels.get(LABEL_MANAGED) != "true":
            return "is not managed by the agent"
        owner = labels.get(LABEL_DEVICE_UUID)
        if owner == self.device_uuid or (not owner and self.adopt_unlabelled):
            return None
        if owner:
            return f"belongs to another device ({owner})"
        return "was made by an earlier release of another agent (no device label)"

"""Wire models of cloud sync: the device's poll response and its state report.

Poll: ``GET /api/v1/device/{uuid}/state`` answers ``{"<uuid>": {"apps", "config", "version"}}``
with an ``ETag``; ``If-None-Match`` with the same tag gives ``304``.

Report: ``PATCH /api/v1/device/state`` takes ``{"<uuid>": DeviceReport}``. A report is either
full (``full: true``: it replaces what the cloud holds) or a diff against the previous report
the cloud acknowledged: a field that is absent (``None``) is unchanged; in ``apps`` only the
apps that changed are present and an app the device no longer runs is ``null``.
"""

from __future__ import annotations

from typing import Annotated, Any, Final

from pydantic import BaseModel, ConfigDict, Field, RootModel

from .target_state import EntityId, TargetState
from .timestamps import Timestamp

MAX_REPORT_BYTES: Final = 1024 * 1024
# On a poll answer (200 or 304): the cloud's copy of the device's reports has a gap (a
# diff arrived out of sequence), so the device's next report must be full.
FULL_REPORT_HEADER: Final = "X-Iotistic-Full-Report"
MAX_TARGET_VERSION: Final = 2**62


TargetVersion = Annotated[int, Field(ge=0, le=MAX_TARGET_VERSION)]
Text = Annotated[str, Field(max_length=4096)]
Percent = Annotated[float, Field(ge=0, le=100)]
NonNegative = Annotated[float, Field(ge=0)]


class _Wire(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class DeviceTarget(TargetState):
    """One device's target as the cloud serves it: the target state plus its version."""

    version: TargetVersion = 0


class TargetResponse(RootModel[dict[str, DeviceTarget]]):
    """The poll body: exactly one entry, keyed by the polling device's uuid."""


class ServiceError(_Wire):
    type: Annotated[str, Field(max_length=64)]
    message: Text
    retryCount: Annotated[int, Field(ge=0)]
    lastFailure: Timestamp
    nextRetry: Timestamp | None = None
    gaveUp: bool = False


class ServiceReport(_Wire):
    """What one service is doing (the same shape as the Device API's applications state)."""

    serviceId: EntityId
    serviceName: Annotated[str, Field(min_length=1, max_length=255)]
    status: Annotated[str, Field(min_length=1, max_length=64)]
    targetState: Annotated[str, Field(max_length=32)]
    containerId: Annotated[str, Field(max_length=128)] | None = None
    image: Annotated[str, Field(max_length=1024)]
    restartCount: Annotated[int, Field(ge=0)] = 0
    exitCode: int | None = None  # while the container is down (a finished job shows 0)
    error: ServiceError | None = None


class AppReport(_Wire):
    appId: EntityId
    appName: Annotated[str, Field(max_length=255)]
    services: dict[str, ServiceReport] = Field(default_factory=dict)


class DeviceReport(_Wire):
    """A full report or a diff (see the module docstring); metrics use the spec's names."""

    full: bool = False
    # Increases by one per report the device builds; lets the cloud see order and gaps.
    sequence: Annotated[int, Field(ge=0)]
    reportedAt: Timestamp
    apps: dict[str, AppReport | None] | None = None
    config: dict[str, Any] | None = None
    # The version of the target the device holds, and whether its containers match it.
    targetVersion: TargetVersion | None = None
    targetApplied: bool | None = None
    cpu_usage: Percent | None = None
    memory_usage: NonNegative | None = None
    memory_total: NonNegative | None = None
    storage_usage: NonNegative | None = None
    storage_total: NonNegative | None = None
    temperature: float | None = None
    uptime: NonNegative | None = None
    os_version: Annotated[str, Field(max_length=255)] | None = None
    agent_version: Annotated[str, Field(max_length=64)] | None = None
    is_online: bool | None = None
    # The anomaly detector's summary (totals by severity, the most recent detections).
    anomalies: dict[str, Any] | None = None
    # Simulation scenarios running on the device: its sensor data or faults are simulated.
    simulation: list[Annotated[str, Field(max_length=64)]] | None = None
    # The last target the device policy refused (field, message and setting of each refusal);
    # {} when the target the device runs was accepted.
    targetRefusal: dict[str, Any] | None = None


class StateReport(RootModel[dict[str, DeviceReport]]):
    """The report body: keyed by the reporting device's uuid (exactly one entry)."""

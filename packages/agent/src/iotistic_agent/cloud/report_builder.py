"""What the device reports: the full picture, and the diff against the previous report.

Pure functions over JSON-ready dicts, named as ``iotistic_contracts.sync.DeviceReport``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from ..orchestrator.status import is_settled

MB: Final = 1024 * 1024


def device_fields(
    apps: Mapping[str, Any],
    config: Mapping[str, Any],
    target_version: int,
    metrics: Mapping[str, Any] | None,
    agent_version: str,
    os_version: str | None,
) -> dict[str, Any]:
    """The device's whole current state in report form (no envelope)."""
    services = [s for app in apps.values() for s in app["services"].values()]
    fields: dict[str, Any] = {
        "apps": {key: dict(app) for key, app in apps.items()},
        "config": dict(config),
        "targetVersion": target_version,
        "targetApplied": all(is_settled(s) for s in services),
        "agent_version": agent_version,
        "os_version": os_version,
        "is_online": True,
    }
    if metrics is not None:
        fields.update(_metric_fields(metrics))
    return {key: value for key, value in fields.items() if value is not None}


def _metric_fields(metrics: Mapping[str, Any]) -> dict[str, Any]:
    # Coarse units (MB, whole seconds, 0.1 %) so that a diff does not carry noise.
    def mb(name: str) -> int | None:
        value = metrics.get(name)
        return None if value is None else int(value // MB)

    cpu = metrics.get("cpuPercent")
    return {
        "cpu_usage": None if cpu is None else round(float(cpu), 1),
        "memory_usage": mb("memoryUsedBytes"),
        "memory_total": mb("memoryTotalBytes"),
        "storage_usage": mb("storageUsedBytes"),
        "storage_total": mb("storageTotalBytes"),
        "temperature": metrics.get("temperatureC"),
        "uptime": metrics.get("uptimeSeconds"),
    }


def diff_fields(previous: Mapping[str, Any], current: Mapping[str, Any]) -> dict[str, Any]:
    """What changed from ``previous`` to ``current``; apps are compared one by one and an
    app that disappeared is ``None`` (the cloud removes it)."""
    changed: dict[str, Any] = {}
    for key, value in current.items():
        if key == "apps":
            apps = _diff_apps(previous.get("apps") or {}, value)
            if apps:
                changed["apps"] = apps
        elif previous.get(key) != value:
            changed[key] = value
    # A field that vanished (a metric that could not be read) is not reported as a change:
    # DeviceReport has no way to say "unknown now", and the old value is the best known.
    return changed


def _diff_apps(previous: Mapping[str, Any], current: Mapping[str, Any]) -> dict[str, Any]:
    changed: dict[str, Any] = {key: app for key, app in current.items() if previous.get(key) != app}
    changed.update({key: None for key in previous if key not in current})
    return changed

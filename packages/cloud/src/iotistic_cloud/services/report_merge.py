"""How a report changes the stored reported state (pure; see contracts/sync.py).

A full report replaces the state. A diff replaces each top-level field it carries and
merges ``apps`` per app key, where ``null`` removes the app. ``full`` and ``sequence`` are
bookkeeping, not state.
"""

from __future__ import annotations

from typing import Any, Final

BOOKKEEPING: Final = ("full", "sequence")


def merge_report(stored: dict[str, Any] | None, report: dict[str, Any]) -> dict[str, Any]:
    """``report`` is a DeviceReport dumped with exclude_unset (absent fields are absent)."""
    if report.get("full"):
        state = {k: v for k, v in report.items() if k not in BOOKKEEPING and v is not None}
        if isinstance(state.get("apps"), dict):
            state["apps"] = {k: v for k, v in state["apps"].items() if v is not None}
        return state
    state = dict(stored or {})
    for field, value in report.items():
        if field in BOOKKEEPING or value is None:
            continue
        if field == "apps":
            apps = dict(state.get("apps") or {})
            for app_key, app in value.items():
                if app is None:
                    apps.pop(app_key, None)
                else:
                    apps[app_key] = app
            state["apps"] = apps
        else:
            state[field] = value
    return state

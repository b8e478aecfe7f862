"""Pure functions from Device API answers to the strings and rows people read.

No rich here: output.py decides how rows are drawn, this module decides what they say,
which keeps it testable with plain data.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

Row = list[str]
Pairs = list[tuple[str, str]]

MISSING = "-"
FAILURE_STATUSES = frozenset(
    {"ImagePullBackOff", "ErrImagePull", "StartFailure", "CrashLoopBackOff"}
)
_HEALTHY_STATUSES = frozenset({"Running"})
_BUSY_STATUSES = frozenset({"Downloading", "Pending", "Updating", "Restarting", "Removing"})


def text(value: Any) -> str:
    """One cell: None and empty strings read as '-', lists as comma-separated items."""
    if value is None or value == "":
        return MISSING
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple):
        return ", ".join(text(v) for v in value) or MISSING
    return str(value)


def short_id(container_id: Any) -> str:
    return text(container_id)[:12]


def status_style(status: str) -> str:
    """A rich style name for a service or check status (dropped when stdout is no terminal)."""
    if status in _HEALTHY_STATUSES or status == "ok":
        return "green"
    if status in FAILURE_STATUSES or status in {"Dead", "fail"}:
        return "red"
    if status in _BUSY_STATUSES:
        return "yellow"
    return ""


def format_bytes(count: Any) -> str:
    if not isinstance(count, int | float) or isinstance(count, bool):
        return MISSING
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def format_percent(value: Any) -> str:
    if not isinstance(value, int | float) or isinstance(value, bool):
        return MISSING
    return f"{value:.1f}%"


def format_duration(seconds: Any) -> str:
    if not isinstance(seconds, int | float) or isinstance(seconds, bool) or seconds < 0:
        return MISSING
    total = int(seconds)
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h {minutes}m"
    if hours:
        return f"{hours}h {minutes}m"
    if minutes:
        return f"{minutes}m {secs}s"
    return f"{secs}s"


def format_error(error: Any) -> str:
    """The failure fields of a service state in one line."""
    if not isinstance(error, Mapping):
        return ""
    parts = [f"{error.get('type') or 'error'}: {error.get('message') or ''}".rstrip(": ")]
    if error.get("gaveUp"):
        parts.append(f"gave up after {error.get('retryCount')} tries")
    elif error.get("nextRetry"):
        parts.append(f"retry {error.get('retryCount')} at {error.get('nextRetry')}")
    return "; ".join(parts)


def format_log_line(entry: Mapping[str, Any]) -> str:
    """`<timestamp> <level or stream> <component> <message>`, skipping absent fields."""
    level = entry.get("level") or entry.get("stream")
    fields = (entry.get("timestamp"), level, entry.get("component"), entry.get("message"))
    return " ".join(str(f) for f in fields if f not in (None, ""))


# --- device status -----------------------------------------------------------------------


def status_pairs(device: Mapping[str, Any], url: str) -> Pairs:
    cloud = device.get("cloud") or {}
    mqtt = device.get("mqtt") or {}
    engine = device.get("engine") or {}
    apps = device.get("apps") or {}
    metrics = device.get("metrics") or {}
    cloud_state = text(cloud.get("state"))
    if cloud.get("endpoint"):
        cloud_state += f" ({cloud['endpoint']})"
    sync_line = _cloud_sync_line(cloud)
    logs_line = _log_shipping_line(device.get("logShipping") or {})
    memory = format_percent(metrics.get("memoryPercent"))
    if metrics.get("memoryTotalBytes"):
        used = format_bytes(metrics.get("memoryUsedBytes"))
        memory += f" ({used} of {format_bytes(metrics['memoryTotalBytes'])})"
    return [
        ("Device", text(device.get("uuid"))),
        ("Name", text(device.get("deviceName"))),
        ("Agent", f"{text(device.get('agentVersion'))} at {url}"),
        ("Provisioning", text(device.get("provisioningState"))),
        ("Cloud", cloud_state),
        *([("Cloud sync", sync_line)] if sync_line else []),
        ("MQTT", _mqtt_line(mqtt)),
        *([("Log shipping", logs_line)] if logs_line else []),
        ("Engine", "reachable" if engine.get("reachable") else "unreachable"),
        ("Target version", text(device.get("targetVersion"))),
        (
            "Apps",
            f"{text(apps.get('configured'))} configured, {text(apps.get('services'))} services: "
            f"{text(apps.get('running'))} running, {text(apps.get('failed'))} failed",
        ),
        ("CPU", format_percent(metrics.get("cpuPercent"))),
        ("Temperature", _celsius(metrics.get("temperatureC"))),
        ("Memory", memory),
        ("Storage", format_percent(metrics.get("storagePercent"))),
        ("Uptime", format_duration(metrics.get("uptimeSeconds"))),
    ]


def _mqtt_line(mqtt: Mapping[str, Any]) -> str:
    """`connected (mqtts://broker:8883)`, with the last error while not connected."""
    line = text(mqtt.get("state"))
    if mqtt.get("broker"):
        line += f" ({mqtt['broker']})"
    if mqtt.get("lastError") and mqtt.get("state") != "connected":
        line += f": {mqtt['lastError']}"
    if mqtt.get("queued"):
        line += f", {mqtt['queued']} queued"
    return line


def _log_shipping_line(shipping: Mapping[str, Any]) -> str | None:
    """`12345 shipped, 0 waiting, 3 containers followed`, with the last error; None when off."""
    if shipping.get("state") != "running":
        return None
    line = (
        f"{text(shipping.get('shipped'))} shipped, {text(shipping.get('pending'))} waiting, "
        f"{text(shipping.get('containersFollowed'))} containers followed"
    )
    dropped = (shipping.get("droppedFromOutbox") or 0) + (shipping.get("droppedInMemory") or 0)
    if dropped:
        line += f", {dropped} dropped"
    if shipping.get("lastError"):
        line += f"; last error: {shipping['lastError']}"
    return line


def _celsius(value: Any) -> str:
    return f"{value:.1f} C" if isinstance(value, int | float) else MISSING


def _cloud_sync_line(cloud: Mapping[str, Any]) -> str | None:
    """Last poll and report, queued reports and the last error, when sync is running."""
    if "reportsQueued" not in cloud:
        return None

    def ago(value: Any) -> str:
        return "never" if value is None else f"{format_duration(value)} ago"

    parts = [
        f"last poll {ago(cloud.get('lastPollSecondsAgo'))}",
        f"last report {ago(cloud.get('lastReportSecondsAgo'))}",
        f"{cloud['reportsQueued']} queued",
    ]
    if cloud.get("setupError"):
        parts.append(f"cannot start: {cloud['setupError']}")
    for loop in ("poll", "report"):
        details = cloud.get(loop) or {}
        if details.get("circuitOpen"):
            cooldown = format_duration(details.get("circuitCooldownRemainingS"))
            parts.append(f"{loop} paused for {cooldown}")
        if details.get("lastError"):
            parts.append(f"{loop} error: {details['lastError']}")
    return ", ".join(parts)


def provision_pairs(state: Mapping[str, Any]) -> Pairs:
    """`provision status`, from GET /v1/provision."""
    if state.get("inProgress"):
        summary = "in progress"
    else:
        summary = "provisioned" if state.get("provisioned") else "not provisioned"
    pairs = [
        ("Device", text(state.get("uuid"))),
        ("State", summary),
        ("Device ID", text(state.get("deviceId"))),
        ("Name", text(state.get("deviceName"))),
        ("Type", text(state.get("deviceType"))),
        ("Cloud endpoint", text(state.get("apiEndpoint"))),
        ("Registered", text(state.get("registeredAt"))),
        ("MQTT broker", text(state.get("mqttBrokerUrl"))),
        ("MQTT user", text(state.get("mqttUsername"))),
    ]
    if state.get("deprovisionedAt") and not state.get("provisioned"):
        pairs.append(("Deprovisioned", text(state.get("deprovisionedAt"))))
    if state.get("lastError"):
        pairs.append(("Last error", text(state.get("lastError"))))
    if state.get("nextAttemptAt"):
        pairs.append(("Next attempt", text(state.get("nextAttemptAt"))))
    return pairs


# --- apps and services -------------------------------------------------------------------

APP_STATE_COLUMNS = ["APP", "NAME", "SERVICE", "STATUS", "IMAGE", "CONTAINER", "RESTARTS", "ERROR"]


def _numeric_first(value: Any) -> tuple[int, int, str]:
    """Sort key putting app ids in numeric order (1001 before 200 would confuse people)."""
    raw = str(value)
    return (0, int(raw), raw) if raw.isdigit() else (1, 0, raw)


def _by_app_id(apps: Mapping[str, Any]) -> list[tuple[str, Any]]:
    return sorted(apps.items(), key=lambda kv: _numeric_first(kv[0]))


def app_state_rows(apps: Mapping[str, Any]) -> list[Row]:
    """Rows of `GET /v2/applications/state`: one per service, one for an empty app."""
    rows: list[Row] = []
    for app_id, app in _by_app_id(apps):
        name = text(app.get("appName"))
        services = app.get("services") or {}
        if not services:
            rows.append([app_id, name, MISSING, MISSING, MISSING, MISSING, MISSING, ""])
        for service_name, state in sorted(services.items()):
            rows.append(
                [
                    app_id,
                    name,
                    service_name,
                    text(state.get("status")),
                    text(state.get("image")),
                    short_id(state.get("containerId")),
                    text(state.get("restartCount")),
                    format_error(state.get("error")),
                ]
            )
    return rows


SERVICE_COLUMNS = ["REF", "APP", "STATUS", "CONTAINER", "IMAGE", "PORTS"]


def service_status(service: Mapping[str, Any]) -> str:
    status = text(service.get("status"))
    if service.get("override") == "stopped":
        status += " (override: stopped)"
    return status


def service_rows(services: Iterable[Mapping[str, Any]]) -> list[Row]:
    ordered = sorted(services, key=lambda s: (_numeric_first(s.get("appId")), text(s.get("ref"))))
    return [
        [
            text(s.get("ref")),
            text(s.get("appId")),
            service_status(s),
            text(s.get("containerName")),
            text(s.get("image")),
            text(s.get("ports")),
        ]
        for s in ordered
    ]


def service_pairs(service: Mapping[str, Any]) -> Pairs:
    pairs: Pairs = [
        ("Ref", text(service.get("ref"))),
        ("Service", f"{text(service.get('serviceName'))} (id {text(service.get('serviceId'))})"),
        ("App", f"{text(service.get('appId'))} ({text(service.get('appName'))})"),
        ("Status", service_status(service)),
        ("Target state", text(service.get("targetState"))),
        ("Container", text(service.get("containerName"))),
        ("Container ID", text(service.get("containerId"))),
        ("Image", text(service.get("image"))),
        ("Ports", text(service.get("ports"))),
        ("Created", text(service.get("createdAt"))),
        ("Started", text(service.get("startedAt"))),
        ("Restarts", text(service.get("restartCount"))),
    ]
    error = format_error(service.get("error"))
    if error:
        pairs.append(("Error", error))
    return pairs


# --- config and diagnostics --------------------------------------------------------------

CONFIG_COLUMNS = ["KEY", "VALUE", "SOURCE", "DEFAULT", "DESCRIPTION"]


def config_rows(config: Mapping[str, Any]) -> list[Row]:
    return [
        [
            key,
            text(entry.get("value")),
            text(entry.get("source")),
            text(entry.get("default")),
            text(entry.get("description")),
        ]
        for key, entry in sorted(config.items())
    ]


def config_pairs(entry: Mapping[str, Any]) -> Pairs:
    return [
        ("Key", text(entry.get("key"))),
        ("Value", text(entry.get("value"))),
        ("Source", text(entry.get("source"))),
        ("Default", text(entry.get("default"))),
        ("Description", text(entry.get("description"))),
    ]


DIAGNOSTIC_COLUMNS = ["CHECK", "STATUS", "MESSAGE"]


def diagnostic_rows(result: Mapping[str, Any]) -> list[Row]:
    return [
        [text(c.get("name")), text(c.get("status")), text(c.get("message"))]
        for c in result.get("checks") or []
    ]


def diagnostics_failed(result: Mapping[str, Any]) -> bool:
    """Failed when the agent says so or when any single check failed (trust neither alone)."""
    checks = result.get("checks") or []
    return result.get("ok") is not True or any(c.get("status") == "fail" for c in checks)

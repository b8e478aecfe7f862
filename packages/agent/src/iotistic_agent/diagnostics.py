"""`iotctl diagnostics`: independent checks, each ok, fail or not configured."""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import aiohttp

from .device_api.health import Health
from .engine.protocol import EngineError
from .orchestrator.model import EngineSnapshot
from .settings import AgentSettings

# Below this much free space on the data partition, updates and logs start failing.
MIN_FREE_BYTES = 200 * 1024 * 1024
CLOUD_TIMEOUT_S = 5.0


def _check(name: str, status: str, message: str) -> dict[str, Any]:
    return {"name": name, "status": status, "message": message}


async def _database(conn: sqlite3.Connection, health: Health) -> dict[str, Any]:
    try:
        result = conn.execute("PRAGMA quick_check").fetchone()[0]
    except sqlite3.Error as exc:
        return _check("database", "fail", f"quick_check failed: {exc}")
    if result != "ok":
        return _check("database", "fail", f"quick_check: {result}")
    writable = await health.database()
    if not writable.ok:
        return _check("database", "fail", writable.message)
    return _check("database", "ok", "integrity ok (PRAGMA quick_check), takes writes")


async def _engine(
    health: Health, snapshot: Callable[[], Awaitable[EngineSnapshot]]
) -> dict[str, Any]:
    answer = await health.engine()
    if not answer.ok:
        return _check("docker", "fail", answer.message)
    try:
        containers = len((await snapshot()).containers)
    except EngineError as exc:
        return _check("docker", "fail", f"engine unavailable: {exc}")
    return _check("docker", "ok", f"engine answers; {containers} managed containers")


def _disk(settings: AgentSettings) -> dict[str, Any]:
    try:
        usage = shutil.disk_usage(settings.data_dir)
    except OSError as exc:
        return _check("disk", "fail", f"cannot read disk usage: {exc}")
    free_mb = usage.free // (1024 * 1024)
    status = "ok" if usage.free >= MIN_FREE_BYTES else "fail"
    return _check("disk", status, f"{free_mb} MB free of {usage.total // (1024 * 1024)} MB")


async def _cloud(settings: AgentSettings) -> dict[str, Any]:
    endpoint = settings.CLOUD_API_ENDPOINT
    if endpoint is None:
        return _check(
            "cloud", "not configured", "no CLOUD_API_ENDPOINT; the device is not provisioned"
        )
    timeout = aiohttp.ClientTimeout(total=CLOUD_TIMEOUT_S)
    try:
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.get(f"{endpoint}/health") as response,
        ):
            if response.status < 500:
                return _check("cloud", "ok", f"{endpoint} answered {response.status}")
            return _check("cloud", "fail", f"{endpoint} answered {response.status}")
    except (aiohttp.ClientError, TimeoutError) as exc:
        return _check("cloud", "fail", f"cannot reach {endpoint}: {exc or type(exc).__name__}")


def _mqtt(status: Mapping[str, Any] | None) -> dict[str, Any]:
    """From the MQTT connection's status (no extra connection is made)."""
    if status is None or status.get("state") == "not configured":
        return _check("mqtt", "not configured", "MQTT comes with provisioning")
    if status.get("state") == "connected":
        return _check("mqtt", "ok", f"connected to {status.get('broker')}")
    error = status.get("lastError") or "not connected yet"
    return _check("mqtt", "fail", f"{status.get('broker')}: {error}")


async def run_diagnostics(
    conn: sqlite3.Connection,
    health: Health,
    snapshot: Callable[[], Awaitable[EngineSnapshot]],
    settings: AgentSettings,
    mqtt_status: Mapping[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """`health` answers for the engine and the database's writes (shared with /v1/healthy);
    `snapshot` is the Device API's shared view of the engine."""
    database_check, engine_check, cloud_check = await asyncio.gather(
        _database(conn, health), _engine(health, snapshot), _cloud(settings)
    )
    return [
        _check("device-api", "ok", "answering"),
        database_check,
        engine_check,
        _disk(settings),
        cloud_check,
        _mqtt(mqtt_status),
    ]

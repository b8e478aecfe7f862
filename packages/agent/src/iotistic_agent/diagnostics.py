"""`iotctl diagnostics`: independent checks, each ok, fail or not configured."""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
from collections.abc import Mapping
from typing import Any

import aiohttp

from .engine.protocol import Engine, EngineError
from .settings import AgentSettings

# Below this much free space on the data partition, updates and logs start failing.
MIN_FREE_BYTES = 200 * 1024 * 1024
CLOUD_TIMEOUT_S = 5.0


def _check(name: str, status: str, message: str) -> dict[str, Any]:
    return {"name": name, "status": status, "message": message}


def _database(conn: sqlite3.Connection) -> dict[str, Any]:
    try:
        result = conn.execute("PRAGMA quick_check").fetchone()[0]
    except sqlite3.Error as exc:
        return _check("database", "fail", f"quick_check failed: {exc}")
    if result != "ok":
        return _check("database", "fail", f"quick_check: {result}")
    return _check("database", "ok", "integrity ok (PRAGMA quick_check)")


async def _engine(engine: Engine) -> dict[str, Any]:
    try:
        snapshot = await engine.snapshot()
    except EngineError as exc:
        return _check("docker", "fail", f"engine unavailable: {exc}")
    return _check("docker", "ok", f"engine answers; {len(snapshot.containers)} managed containers")


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
    engine: Engine,
    settings: AgentSettings,
    mqtt_status: Mapping[str, Any] | None = None,
) -> list[dict[str, Any]]:
    engine_check, cloud_check = await asyncio.gather(_engine(engine), _cloud(settings))
    return [
        _check("device-api", "ok", "answering"),
        _database(conn),
        engine_check,
        _disk(settings),
        cloud_check,
        _mqtt(mqtt_status),
    ]

"""Log records and uploads for the cloud's log tests."""

from __future__ import annotations

import gzip
import json
from typing import Any

import httpx
from iotistic_contracts.logs import LOGS_CONTENT_TYPE

from tests.cloud.device_kit import SimDevice


def record(seq: int, message: str | None = None, **fields: Any) -> dict[str, Any]:
    """An agent record at 12:00:<seq> unless fields say otherwise."""
    body: dict[str, Any] = {
        "seq": seq,
        "timestamp": f"2026-11-25T12:{seq // 60 % 60:02d}:{seq % 60:02d}.000000123Z",
        "level": "info",
        "source": "agent",
        "component": "agent",
        "message": message if message is not None else f"message {seq}",
    }
    body.update(fields)
    return body


def container(seq: int, service: str, message: str, **fields: Any) -> dict[str, Any]:
    tags: dict[str, Any] = {"component": None, "app": "shop", "stream": "stdout"}
    return record(seq, message, source="container", service=service, **(tags | fields))


def ndjson(records: list[dict[str, Any]]) -> bytes:
    lines = (json.dumps({k: v for k, v in r.items() if v is not None}) for r in records)
    return ("\n".join(lines) + "\n").encode()


def logs_path(device_uuid: str) -> str:
    return f"/api/v1/device/{device_uuid}/logs"


async def upload(
    client: httpx.AsyncClient,
    device: SimDevice,
    records: list[dict[str, Any]],
    *,
    compress: bool = False,
) -> httpx.Response:
    body = ndjson(records)
    headers = {**device.auth, "Content-Type": LOGS_CONTENT_TYPE}
    if compress:
        body = gzip.compress(body)
        headers["Content-Encoding"] = "gzip"
    return await client.post(logs_path(device.uuid), content=body, headers=headers)

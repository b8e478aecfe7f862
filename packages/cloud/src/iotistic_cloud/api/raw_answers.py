"""A JSON error sent from ASGI middleware, before (or instead of) the application: the same
``{"error": message}`` shape as every other error (api/errors.py)."""

from __future__ import annotations

import json

from starlette.types import Send


async def send_error(
    send: Send, status: int, message: str, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    body = json.dumps({"error": message}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})

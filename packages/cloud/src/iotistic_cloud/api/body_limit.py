"""Request body size limit, answered as JSON like every other error.

Starlette's own limiter answers some cases in plain text, so this small ASGI middleware is
used instead. A declared Content-Length over the limit is refused before the app runs; a
body that grows past it while being read raises HTTPException(413), which FastAPI passes
through its body parsing to the JSON error handler.
"""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..limits import MAX_BODY_BYTES
from .raw_answers import send_error


def too_large_message(limit: int) -> str:
    return f"request body is larger than {limit} bytes"


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, max_bytes: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            # The body is not read: the connection cannot be used for another request.
            close = [(b"connection", b"close")]
            await send_error(send, 413, too_large_message(self.max_bytes), close)
            return
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise HTTPException(413, too_large_message(self.max_bytes))
            return message

        await self.app(scope, limited, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None

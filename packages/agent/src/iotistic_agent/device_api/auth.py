"""The device API key: generated once, kept in a 0600 file, required on every route but two."""

from __future__ import annotations

import hmac
import os
import secrets
from pathlib import Path

from aiohttp import web
from iotistic_device_paths import api_key_path

from .errors import Handler, Middleware, error_response

# Liveness probes must work without credentials; they reveal nothing.
PUBLIC_ROUTES = frozenset(
    {("GET", "/ping"), ("HEAD", "/ping"), ("GET", "/v1/healthy"), ("HEAD", "/v1/healthy")}
)


def key_path(data_dir: Path) -> Path:
    return api_key_path(data_dir)  # iotctl finds it through the same function


def load_or_create_key(data_dir: Path) -> str:
    """Read the key, or create it with owner-only permissions on first start."""
    path = key_path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        key = path.read_text(encoding="ascii").strip()
        if len(key) < 32:
            raise RuntimeError(f"device API key in {path} is too short or empty") from None
        os.chmod(path, 0o600)  # repair permissions someone loosened
        return key
    key = secrets.token_urlsafe(32)
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.write(key + "\n")
        f.flush()
        os.fsync(f.fileno())
    return key


def auth_middleware(api_key: str) -> Middleware:
    expected = f"Bearer {api_key}".encode()

    @web.middleware
    async def check_key(request: web.Request, handler: Handler) -> web.StreamResponse:
        if (request.method, request.path) in PUBLIC_ROUTES:
            return await handler(request)
        given = request.headers.get("Authorization", "").encode()
        if not hmac.compare_digest(given, expected):
            return error_response(
                401, "unauthorized", "missing or invalid device API key (Authorization: Bearer)"
            )
        return await handler(request)

    return check_key

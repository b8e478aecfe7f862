"""The device API key: generated once, kept in a 0600 file, required on every route but two."""

from __future__ import annotations

import hmac
import os
import secrets
from pathlib import Path

from aiohttp import web
from iotistic_device_paths import api_key_path

from .app_access import app_of_key
from .context import api_context
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
    """The device API key opens every route; an app's scoped key (app_access.py) the few an
    app's own services may use, for that app only."""
    expected = f"Bearer {api_key}".encode()

    @web.middleware
    async def check_key(request: web.Request, handler: Handler) -> web.StreamResponse:
        if (request.method, request.path) in PUBLIC_ROUTES:
            return await handler(request)
        given = request.headers.get("Authorization", "")
        if hmac.compare_digest(given.encode(), expected):
            return await handler(request)
        scheme, _, key = given.partition(" ")
        app_id = app_of_key(api_key, key) if scheme == "Bearer" else None
        if app_id is None or app_id not in api_context(request).targets.declared_target():
            return error_response(
                401, "unauthorized", "missing or invalid device API key (Authorization: Bearer)"
            )
        if not scoped_route_allowed(request, app_id):
            return error_response(
                403,
                "forbidden",
                f"this key of app {app_id} only publishes sensor readings "
                f"(POST /v1/sensors/{{metric}}) and reads its app (GET /v1/apps/{app_id})",
            )
        return await handler(request)

    return check_key


def scoped_route_allowed(request: web.Request, app_id: int) -> bool:
    resource = request.match_info.route.resource
    route = (request.method, resource.canonical if resource is not None else None)
    if route == ("POST", "/v1/sensors/{metric}"):
        return True
    return route in {("GET", "/v1/apps/{appId}"), ("HEAD", "/v1/apps/{appId}")} and (
        request.match_info.get("appId") == str(app_id)
    )

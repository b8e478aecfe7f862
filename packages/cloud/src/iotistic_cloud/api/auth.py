"""Bearer credentials: a device's API key, or the admin token (compared in constant time)."""

from __future__ import annotations

from fastapi import Request

from ..services.errors import Unauthorized
from ..tokens import same_secret, token_hash
from .state import cloud_of


def bearer_token(request: Request) -> str:
    header = request.headers.get("authorization")
    if header is None:
        raise Unauthorized("missing 'Authorization: Bearer <key>' header")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("the Authorization header must be 'Bearer <key>'")
    return token


def device_key(request: Request) -> str:
    """The device's API key, counted against its rate limit first (429 past it), before
    any database work is spent on it."""
    key = bearer_token(request)
    cloud_of(request).device_limits.check(token_hash(key))
    return key


async def require_admin(request: Request) -> None:
    """Dependency of every admin route."""
    token = bearer_token(request)
    if not same_secret(token, request.app.state.admin_token):
        raise Unauthorized("admin token is not valid")

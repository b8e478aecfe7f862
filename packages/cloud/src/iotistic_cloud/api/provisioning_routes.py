"""Device provisioning, phase 1 (key exchange) and phase 2 (register); see the services."""

from __future__ import annotations

from fastapi import APIRouter, Request
from iotistic_contracts.provisioning import (
    KeyExchangeRequest,
    KeyExchangeResponse,
    RegisterRequest,
    RegisterResponse,
)

from ..tokens import token_hash
from .state import cloud_of

router = APIRouter(prefix="/api/provisioning/v2", tags=["provisioning"])


@router.post("/key-exchange")
async def key_exchange(body: KeyExchangeRequest, request: Request) -> KeyExchangeResponse:
    cloud = cloud_of(request)
    # Each new exchange costs a key pair (tens of ms of CPU): a leaked key is throttled.
    cloud.provisioning_limits.check(token_hash(body.provisioningApiKey))
    return await cloud.exchanges.exchange(body, cloud.clock())


@router.post("/register", status_code=201)
async def register(body: RegisterRequest, request: Request) -> RegisterResponse:
    cloud = cloud_of(request)
    endpoint = cloud.settings.public_url or str(request.base_url).rstrip("/")
    return await cloud.registration.register(body, endpoint, cloud.clock())

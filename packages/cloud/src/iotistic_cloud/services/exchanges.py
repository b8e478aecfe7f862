"""Phase 1 of provisioning: the key exchange.

Each exchange gets a fresh RSA-2048 key stored with it, so any replica can finish the
exchange, and using it once deletes it. The spec's two calls (first without the device's
public key, then with it) reach the same exchange; a single call with the key also works.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from typing import Final

from iotistic_contracts.provisioning import KeyExchangeRequest, KeyExchangeResponse
from iotistic_contracts.sealed import private_key_pem, public_key_pem
from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError

from ..clock import isoformat
from ..db.engine import Database
from ..db.models import Device, KeyExchange
from .errors import Conflict, TooManyRequests
from .key_pairs import KeyPairFactory
from .keys import usable_key

# Bounds the rows (and RSA key generations) one leaked provisioning key can cause.
MAX_PENDING_PER_KEY: Final = 1000


def already_registered(device_uuid: str) -> Conflict:
    return Conflict(
        f"device {device_uuid} is already registered; "
        "delete it on the cloud or deprovision it first"
    )


def _new_key_id() -> str:
    return secrets.token_urlsafe(18)


def _reusable(
    pending: KeyExchange | None, key_id: int, request: KeyExchangeRequest, now: datetime
) -> bool:
    if pending is None or pending.expires_at <= now or pending.provisioning_key_id != key_id:
        return False
    # A device that restarted with a new key pair gets a new exchange, never a changed one.
    given = request.devicePublicKey
    return given is None or pending.device_public_key in (None, given)


class ExchangeService:
    def __init__(
        self, database: Database, ttl_s: int, key_pairs: KeyPairFactory | None = None
    ) -> None:
        self._db = database
        self._ttl = timedelta(seconds=ttl_s)
        self._key_pairs = key_pairs if key_pairs is not None else KeyPairFactory()

    async def exchange(self, request: KeyExchangeRequest, now: datetime) -> KeyExchangeResponse:
        device_uuid = request.deviceUuid
        async with self._db.transaction() as session:
            key = await usable_key(session, request.provisioningApiKey, now)
            if await session.get(Device, device_uuid) is not None:
                raise already_registered(device_uuid)
            pending = (
                await session.execute(
                    select(KeyExchange).where(KeyExchange.device_uuid == device_uuid)
                )
            ).scalar_one_or_none()
            if _reusable(pending, key.id, request, now):
                assert pending is not None
                if request.devicePublicKey is not None:
                    pending.device_public_key = request.devicePublicKey
                return _response(pending)
            count = select(func.count()).where(
                KeyExchange.provisioning_key_id == key.id, KeyExchange.expires_at > now
            )
            if (await session.execute(count)).scalar_one() >= MAX_PENDING_PER_KEY:
                raise TooManyRequests(
                    "too many pending key exchanges for this provisioning key; try again later"
                )
            key_id = key.id
        # Tens of milliseconds of CPU: off the event loop, one at a time, outside a transaction.
        private_key = await self._key_pairs.new_private_key()
        record = KeyExchange(
            key_id=_new_key_id(),
            device_uuid=device_uuid,
            provisioning_key_id=key_id,
            private_key_pem=private_key_pem(private_key).decode("ascii"),
            public_key_pem=public_key_pem(private_key),
            device_public_key=request.devicePublicKey,
            created_at=now,
            expires_at=now + self._ttl,
        )
        try:
            async with self._db.transaction() as session:
                # Opportunistic purge: expired exchanges are never used again.
                await session.execute(delete(KeyExchange).where(KeyExchange.expires_at <= now))
                await session.execute(
                    delete(KeyExchange).where(KeyExchange.device_uuid == device_uuid)
                )
                session.add(record)
        except IntegrityError:
            # The same device raced itself (its uuid is unique among exchanges).
            raise Conflict(
                f"another key exchange for device {device_uuid} is in progress; try again"
            ) from None
        return _response(record)


def _response(exchange: KeyExchange) -> KeyExchangeResponse:
    expires_at = isoformat(exchange.expires_at)
    assert expires_at is not None
    return KeyExchangeResponse(
        apiPublicKey=exchange.public_key_pem, keyId=exchange.key_id, expiresAt=expires_at
    )

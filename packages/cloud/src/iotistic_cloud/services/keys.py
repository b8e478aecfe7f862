"""Provisioning keys: created by an admin, shown once, stored as a hash, limited in use."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Final

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from ..db.engine import Database
from ..db.models import ProvisioningKey
from ..tokens import PROVISIONING_KEY_PREFIX, new_token, token_hash
from .errors import Forbidden, NotFound, Unauthorized

PREFIX_CHARS: Final = 8
MAX_KEY_LIFETIME_S: Final = 10 * 365 * 24 * 3600
MAX_DEVICES_PER_KEY: Final = 1_000_000
# Ids are 32-bit integers in the database; a larger one cannot exist.
MAX_KEY_ID: Final = 2**31 - 1


class NewKey(BaseModel):
    """The admin's request; the API body and the CLI options both become this."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    fleet: Annotated[
        str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    ] = "default"
    maxDevices: Annotated[int, Field(ge=1, le=MAX_DEVICES_PER_KEY)] | None = None
    expiresInS: Annotated[int, Field(ge=1, le=MAX_KEY_LIFETIME_S)] | None = None


@dataclass(frozen=True)
class CreatedKey:
    record: ProvisioningKey
    # The only time the plain key exists outside the device that will use it.
    key: str


def key_problem(key: ProvisioningKey, now: datetime) -> Unauthorized | Forbidden | None:
    """Why ``key`` cannot register another device now, or None when it can."""
    if key.revoked_at is not None:
        return Unauthorized("provisioning key was revoked")
    if key.expires_at is not None and key.expires_at <= now:
        return Unauthorized("provisioning key has expired")
    if key.max_devices is not None and key.devices_registered >= key.max_devices:
        return Forbidden(f"provisioning key has reached its maximum of {key.max_devices} devices")
    return None


async def find_key(session: AsyncSession, secret: str) -> ProvisioningKey | None:
    stmt = select(ProvisioningKey).where(ProvisioningKey.key_hash == token_hash(secret))
    return (await session.execute(stmt)).scalar_one_or_none()


async def usable_key(session: AsyncSession, secret: str, now: datetime) -> ProvisioningKey:
    key = await find_key(session, secret)
    if key is None:
        raise Unauthorized("provisioning key is not valid")
    problem = key_problem(key, now)
    if problem is not None:
        raise problem
    return key


async def claim_device_slot(session: AsyncSession, key_id: int, now: datetime) -> None:
    """Count one more device against the key, atomically: of two registrations racing for
    the last slot only one wins, on SQLite and PostgreSQL alike."""
    stmt = (
        update(ProvisioningKey)
        .where(
            ProvisioningKey.id == key_id,
            ProvisioningKey.revoked_at.is_(None),
            or_(ProvisioningKey.expires_at.is_(None), ProvisioningKey.expires_at > now),
            or_(
                ProvisioningKey.max_devices.is_(None),
                ProvisioningKey.devices_registered < ProvisioningKey.max_devices,
            ),
        )
        .values(devices_registered=ProvisioningKey.devices_registered + 1)
        .execution_options(synchronize_session=False)
    )
    result = await session.execute(stmt)
    if result.rowcount == 1:  # type: ignore[attr-defined]
        return
    key = await session.get(ProvisioningKey, key_id, populate_existing=True)
    problem = None if key is None else key_problem(key, now)
    raise problem or Unauthorized("provisioning key is not valid")


class KeyService:
    def __init__(self, database: Database) -> None:
        self._db = database

    async def create(self, request: NewKey, now: datetime) -> CreatedKey:
        secret = new_token(PROVISIONING_KEY_PREFIX)
        expires_at = None
        if request.expiresInS is not None:
            expires_at = now + timedelta(seconds=request.expiresInS)
        record = ProvisioningKey(
            fleet=request.fleet,
            key_hash=token_hash(secret),
            prefix=secret[:PREFIX_CHARS],
            max_devices=request.maxDevices,
            devices_registered=0,
            expires_at=expires_at,
            revoked_at=None,
            created_at=now,
        )
        async with self._db.transaction() as session:
            session.add(record)
        return CreatedKey(record=record, key=secret)

    async def list(self) -> list[ProvisioningKey]:
        async with self._db.sessions() as session:
            stmt = select(ProvisioningKey).order_by(ProvisioningKey.id)
            return list((await session.execute(stmt)).scalars())

    async def revoke(self, key_id: int, now: datetime) -> ProvisioningKey:
        """Idempotent: revoking a revoked key keeps its first revocation time."""
        async with self._db.transaction() as session:
            key = await session.get(ProvisioningKey, key_id) if 1 <= key_id <= MAX_KEY_ID else None
            if key is None:
                raise NotFound(f"provisioning key {key_id} does not exist")
            if key.revoked_at is None:
                key.revoked_at = now
            return key

"""Device requests carry the device's own API key; it is looked up by its hash, one query."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Final

from iotistic_contracts.provisioning import normalize_uuid
from sqlalchemy import Row, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from ..db.engine import Database
from ..db.models import Device
from ..tokens import token_hash
from .errors import Forbidden, InvalidInput, Unauthorized

# last_seen is written at most this often per device: a poll stays one read, and
# online/offline (DEVICE_OFFLINE_AFTER_S, at least 1 s) is still exact to a few seconds.
LAST_SEEN_RESOLUTION: Final = timedelta(seconds=5)
INVALID_KEY: Final = "device API key is not valid"


async def find_device(conn: AsyncConnection, api_key: str, *columns: Any) -> Row[Any]:
    """The device owning ``api_key``: its uuid, last_seen, then ``columns``."""
    stmt = select(Device.uuid, Device.last_seen, *columns).where(
        Device.api_key_hash == token_hash(api_key)
    )
    row = (await conn.execute(stmt)).first()
    if row is None:
        raise Unauthorized(INVALID_KEY)
    return row


def path_uuid(value: str) -> str:
    try:
        return normalize_uuid(value)
    except ValueError as exc:
        raise InvalidInput(f"uuid: {exc}", [{"field": "uuid", "message": str(exc)}]) from None


def require_own(device_uuid: str, requested: str) -> None:
    """A key opens only its own device; another device's data is never read."""
    if path_uuid(requested) != device_uuid:
        raise Forbidden("a device API key can only access its own device")


def seen_is_stale(last_seen: datetime | None, now: datetime) -> bool:
    return last_seen is None or now - last_seen >= LAST_SEEN_RESOLUTION


async def mark_seen(database: Database, device_uuid: str, now: datetime) -> None:
    async with database.write_connection() as conn:
        await conn.execute(update(Device).where(Device.uuid == device_uuid).values(last_seen=now))

"""Registered devices: listing, details, deletion (by an admin or by the device itself)."""

from __future__ import annotations

from sqlalchemy import delete, select

from ..db.engine import Database
from ..db.models import Device
from ..mqtt.accounts import DeviceAccounts, NoBroker
from .device_auth import find_device, require_own
from .errors import NotFound


def not_found(device_uuid: str) -> NotFound:
    return NotFound(f"device {device_uuid} does not exist")


class DeviceService:
    def __init__(self, database: Database, accounts: DeviceAccounts | None = None) -> None:
        self._db = database
        self._accounts = accounts if accounts is not None else NoBroker()

    async def list(self) -> list[Device]:
        async with self._db.sessions() as session:
            stmt = select(Device).order_by(Device.registered_at, Device.uuid)
            return list((await session.execute(stmt)).scalars())

    async def get(self, device_uuid: str) -> Device:
        async with self._db.sessions() as session:
            device = await session.get(Device, device_uuid)
        if device is None:
            raise not_found(device_uuid)
        return device

    async def delete(self, device_uuid: str) -> None:
        """Removes the device and, by cascade, its report history.

        The broker account goes first (which also disconnects the device): with the broker
        unreachable nothing is deleted (503), so a deleted device never keeps broker access.
        """
        async with self._db.sessions() as session:
            if await session.get(Device, device_uuid) is None:
                raise not_found(device_uuid)
        await self._accounts.delete_device(device_uuid)
        async with self._db.transaction() as session:
            result = await session.execute(
                delete(Device)
                .where(Device.uuid == device_uuid)
                .execution_options(synchronize_session=False)
            )
            if result.rowcount != 1:  # type: ignore[attr-defined]
                raise not_found(device_uuid)

    async def deprovision(self, api_key: str, requested_uuid: str) -> None:
        """The device removes itself; its key opens only its own uuid."""
        async with self._db.reads.connect() as conn:
            row = await find_device(conn, api_key)
        require_own(row.uuid, requested_uuid)
        await self.delete(row.uuid)

"""Target states: what each device must run, versioned, served to polls with an ETag."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from iotistic_contracts.errors import TargetStateError, parse_target_state
from iotistic_contracts.sync import MAX_TARGET_VERSION, TargetResponse
from iotistic_contracts.target_state import TargetState
from sqlalchemy import update

from ..db.engine import Database
from ..db.models import Device
from ..mqtt.accounts import DeviceAccounts, NoBroker
from .device_auth import find_device, mark_seen, require_own, seen_is_stale
from .errors import Conflict, InvalidInput, NotFound, PreconditionFailed
from .validation import check_storable

ETAG_HASH_CHARS: Final = 20
_SET_ATTEMPTS: Final = 5


@dataclass(frozen=True)
class RenderedTarget:
    state: dict[str, Any]
    state_hash: str
    version: int
    etag: str
    body: str


@dataclass(frozen=True)
class TargetUpdate:
    version: int
    changed: bool
    etag: str


@dataclass(frozen=True)
class PollResult:
    etag: str
    body: str
    # Asks the device for a full report (its reports have a gap): see contracts/sync.py.
    full_report_wanted: bool = False


def make_etag(version: int, state_hash: str) -> str:
    # Strong and quoted (RFC 9110); the version alone would repeat after a database reset.
    return f'"{version}-{state_hash[:ETAG_HASH_CHARS]}"'


def render_target(device_uuid: str, target: TargetState, version: int) -> RenderedTarget:
    """Everything stored for one target version, the poll body included."""
    # Checked before the JSON dump, which would turn an infinite number into null.
    check_storable(target.model_dump(exclude_unset=True), "invalid target state")
    state = target.model_dump(mode="json", exclude_unset=True)
    state.setdefault("apps", {})
    state.setdefault("config", {})
    # Through the wire model, so the body is exactly what devices parse.
    response = TargetResponse.model_validate({device_uuid: {**state, "version": version}})
    state_hash = target.state_hash()
    return RenderedTarget(
        state=state,
        state_hash=state_hash,
        version=version,
        etag=make_etag(version, state_hash),
        body=response.model_dump_json(exclude_unset=True),
    )


def etag_matches(if_none_match: str, etag: str) -> bool:
    """RFC 9110 If-None-Match: ``*`` or a list of tags, compared weakly (``W/`` ignored)."""
    wanted = etag.removeprefix("W/")
    for candidate in if_none_match.split(","):
        candidate = candidate.strip()
        if candidate == "*" or candidate.removeprefix("W/") == wanted:
            return True
    return False


def if_match_holds(if_match: str, version: int, etag: str) -> bool:
    """RFC 9110 If-Match, strong comparison: ``*``, or a list of which one entry is the
    target's ETag or its version number (``3`` or ``"3"``: an ETag here always has a hash
    part, so a bare number cannot be mistaken for one). A weak tag never matches."""
    for candidate in if_match.split(","):
        candidate = candidate.strip()
        if candidate in ("*", etag) or candidate.strip('"') == str(version):
            return True
    return False


def target_changed(device_uuid: str, version: int, etag: str) -> PreconditionFailed:
    return PreconditionFailed(
        f"the target of device {device_uuid} is at version {version} (ETag {etag}), not the "
        "one If-Match names: it changed since it was read; read it again"
    )


def parse_target(raw: bytes | str | dict[str, Any]) -> TargetState:
    try:
        return parse_target_state(raw)
    except TargetStateError as exc:
        raise InvalidInput(exc.message, exc.errors) from None


class TargetService:
    def __init__(self, database: Database, accounts: DeviceAccounts | None = None) -> None:
        self._db = database
        self._accounts = accounts if accounts is not None else NoBroker()

    async def set_target(
        self, device_uuid: str, target: TargetState, now: datetime, if_match: str | None = None
    ) -> TargetUpdate:
        """Store ``target``; the version moves only when the state really changed, and
        then the device is told on ``agent/<uuid>/update`` (best effort: it polls anyway).
        With ``if_match`` (an ETag or version, see if_match_holds), only if the stored
        target is still that one: PreconditionFailed (412) otherwise, nothing changed."""
        update = await self._store(device_uuid, target, now, if_match)
        if update.changed:
            await self._accounts.target_changed(device_uuid, update.version)
        return update

    async def _store(
        self, device_uuid: str, target: TargetState, now: datetime, if_match: str | None
    ) -> TargetUpdate:
        new_hash = target.state_hash()
        for _ in range(_SET_ATTEMPTS):
            async with self._db.transaction() as session:
                device = await session.get(Device, device_uuid)
                if device is None:
                    raise NotFound(f"device {device_uuid} does not exist")
                version, etag = device.target_version, device.target_etag
                # Checked against what the compare-and-set below writes over: a concurrent
                # change makes it fail, and the next attempt sees that change here.
                if if_match is not None and not if_match_holds(if_match, version, etag):
                    raise target_changed(device_uuid, version, etag)
                if device.target_hash == new_hash:
                    return TargetUpdate(version=version, changed=False, etag=etag)
                if device.target_version >= MAX_TARGET_VERSION:
                    raise Conflict("target version is at its maximum")
                rendered = render_target(device_uuid, target, device.target_version + 1)
                # Compare-and-set on the version: two admins saving at once both get a version.
                result = await session.execute(
                    update(Device)
                    .where(Device.uuid == device_uuid)
                    .where(Device.target_version == device.target_version)
                    .values(**target_columns(rendered), target_updated_at=now)
                    .execution_options(synchronize_session=False)
                )
                if result.rowcount == 1:  # type: ignore[attr-defined]
                    return TargetUpdate(version=rendered.version, changed=True, etag=rendered.etag)
        raise Conflict("the target changed concurrently too often; try again")

    async def poll(self, api_key: str, requested_uuid: str, now: datetime) -> PollResult:
        async with self._db.reads.connect() as conn:
            row = await find_device(
                conn, api_key, Device.target_etag, Device.target_body, Device.reports_missing
            )
        require_own(row.uuid, requested_uuid)
        if seen_is_stale(row.last_seen, now):
            await mark_seen(self._db, row.uuid, now)
        return PollResult(row.target_etag, row.target_body, bool(row.reports_missing))


def target_columns(rendered: RenderedTarget) -> dict[str, Any]:
    return {
        "target_state": rendered.state,
        "target_hash": rendered.state_hash,
        "target_version": rendered.version,
        "target_etag": rendered.etag,
        "target_body": rendered.body,
    }

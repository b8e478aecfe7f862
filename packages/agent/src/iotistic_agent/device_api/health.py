"""Is the agent able to do its job right now? `GET /v1/healthy` asks three things:

- the engine: does it answer `_ping` (within 2 s)? The answer is shared for 0.5 s, so a
  probe polling every 100 ms costs the engine five pings a second at most, and an outage or
  a recovery shows within about a second (issue 12, item 7: it used to wait for the next
  reconciliation pass, 30 s by default);
- the database: does a write commit? A fresh connection rewrites one row of `health_probe`
  at most every 5 s (each one is an fsync; a probe polling often must not wear the flash);
  a write the Device API saw fail (a full disk) counts at once;
- the disk: is there room left on the file system of the data directory (at least 4 MiB
  for the database, its journal and the logs)?
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .recent import Recent

ENGINE_MAX_AGE_S = 0.5
PING_TIMEOUT_S = 2.0
DATABASE_MAX_AGE_S = 10.0
DATABASE_REFRESH_AFTER_S = 5.0
DISK_FULL_BELOW_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class Check:
    name: str  # engine, database or disk
    ok: bool
    message: str
    error: str  # the error code a failure answers with

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "ok": self.ok, "message": self.message}


def engine_check(answered: bool) -> Check:
    if answered:
        return Check("engine", True, "the container engine answers", "engine_unavailable")
    return Check(
        "engine",
        False,
        f"container engine unavailable: no answer to a ping within {PING_TIMEOUT_S:.0f} s",
        "engine_unavailable",
    )


def database_check(path: Path, problem: str | None) -> Check:
    if problem is None:
        return Check("database", True, f"{path} takes writes", "database_unwritable")
    return Check("database", False, f"cannot write {path}: {problem}", "database_unwritable")


@dataclass(frozen=True)
class DiskSpace:
    free_bytes: int
    total_bytes: int
    mount_point: Path


def disk_check(data_dir: Path, space: DiskSpace | str) -> Check:
    """`space`: what the file system of `data_dir` has, or why it could not be read."""
    if isinstance(space, str):
        return Check(
            "disk", False, f"cannot read the free space of {data_dir}: {space}", "disk_full"
        )
    where = f"the disk of {data_dir} (file system at {space.mount_point})"
    figures = f"{_size(space.free_bytes)} free of {_size(space.total_bytes)}"
    if space.free_bytes < DISK_FULL_BELOW_BYTES:
        return Check("disk", False, f"{where} is full: {figures}", "disk_full")
    return Check("disk", True, f"{where}: {figures}", "disk_full")


def _size(count: int) -> str:
    mib = count / (1024 * 1024)
    return f"{count // 1024} KiB" if mib < 10 else f"{mib:.0f} MiB"


def disk_space(path: Path) -> DiskSpace:
    """Free space as the agent can use it: root may use the blocks reserved for root."""
    stat = os.statvfs(path)
    blocks = stat.f_bfree if os.geteuid() == 0 else stat.f_bavail
    return DiskSpace(blocks * stat.f_frsize, stat.f_blocks * stat.f_frsize, mount_point(path))


def mount_point(path: Path) -> Path:
    path = path.resolve()
    while not os.path.ismount(path) and path != path.parent:
        path = path.parent
    return path


def probe_database(path: Path) -> str | None:
    """Commit one small write through a connection of its own; None, or why it failed."""
    try:
        # mode=rw: never create a database that is not there.
        conn = sqlite3.connect(f"{path.as_uri()}?mode=rw", uri=True, timeout=2.0)
        try:
            with conn:
                conn.execute(
                    "INSERT INTO health_probe (id, checkedAt) VALUES (1, ?) "
                    "ON CONFLICT(id) DO UPDATE SET checkedAt = excluded.checkedAt",
                    (time.time(),),
                )
        finally:
            conn.close()
    except sqlite3.Error as exc:
        return str(exc)
    return None


class Health:
    def __init__(
        self,
        ping: Callable[[], Awaitable[bool]],
        database_path: Path,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ping = ping
        self._database_path = database_path
        self._clock = clock
        self._engine = Recent(self._ask_engine, ENGINE_MAX_AGE_S, clock=clock, name="health-engine")
        self._database = Recent(
            self._probe,
            DATABASE_MAX_AGE_S,
            refresh_after_s=DATABASE_REFRESH_AFTER_S,
            clock=clock,
            name="health-database",
        )

    async def _ask_engine(self) -> Check:
        try:
            async with asyncio.timeout(PING_TIMEOUT_S):
                return engine_check(await self._ping())
        except TimeoutError:
            return engine_check(False)

    async def _probe(self) -> Check:
        problem = await asyncio.to_thread(probe_database, self._database_path)
        return database_check(self._database_path, problem)

    async def engine(self) -> Check:
        return await self._engine.get()

    async def database(self) -> Check:
        return await self._database.get()

    def disk(self) -> Check:
        data_dir = self._database_path.parent
        try:
            return disk_check(data_dir, disk_space(data_dir))
        except OSError as exc:
            return disk_check(data_dir, exc.strerror or str(exc))

    def write_failed(self, problem: str) -> None:
        """A write elsewhere failed (the Device API saw it): unhealthy until a probe works."""
        self._database.offer(self._clock(), database_check(self._database_path, problem))

    async def checks(self) -> list[Check]:
        engine, database = await asyncio.gather(self.engine(), self.database())
        return [engine, database, self.disk()]

"""The async engine: one per process, shared by every request (and by a CLI command)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.ext.asyncio import AsyncSession as AsyncSession
from sqlalchemy.pool import ConnectionPoolEntry

from ..settings import DEFAULT_DATABASE_POOL_SIZE, DEFAULT_DATABASE_WAIT_TIMEOUT_S
from .availability import DatabaseBusy, OutageLog
from .private_files import private_sqlite_file

SQLITE_BUSY_TIMEOUT_MS = 10_000

SessionFactory = async_sessionmaker[AsyncSession]


def create_engine(
    url: str,
    pool_size: int = DEFAULT_DATABASE_POOL_SIZE,
    wait_timeout_s: float = DEFAULT_DATABASE_WAIT_TIMEOUT_S,
) -> AsyncEngine:
    # hide_parameters: a database error in a log must not carry the values (hashes, keys).
    if url.startswith("sqlite"):
        return _sqlite_engine(url)
    # No pool_pre_ping: it costs a round trip per request (measured: a third of the poll's
    # throughput); a connection lost in a database restart fails one request with 503.
    # A pool larger than the usual concurrency: overflow connections are closed on return,
    # and opening one (TLS negotiation included) costs more than the query.
    return create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size // 2,
        pool_timeout=wait_timeout_s,
        hide_parameters=True,
        connect_args={"server_settings": {"application_name": "iotistic-cloud"}},
    )


def session_factory(engine: AsyncEngine) -> SessionFactory:
    # Objects stay readable after commit: services return them to the API layer.
    return async_sessionmaker(engine, expire_on_commit=False)


def _sqlite_engine(url: str) -> AsyncEngine:
    database = make_url(url).database
    engine = create_async_engine(
        url, hide_parameters=True, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}
    )
    if database:
        path = Path(database)

        # Right before SQLite opens (and would create) the file, not before it is needed.
        def make_private(*_args: Any) -> None:
            private_sqlite_file(path)

        event.listen(engine.sync_engine, "do_connect", make_private)
    event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
    cursor = dbapi_connection.cursor()
    # WAL: readers never wait for the writer; NORMAL is durable across process crashes.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    # SQLite leaves foreign keys off unless asked, per connection.
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.close()


class Database:
    """The engine and its session factory; created once by the composition root."""

    def __init__(
        self,
        url: str,
        *,
        pool_size: int = DEFAULT_DATABASE_POOL_SIZE,
        wait_timeout_s: float = DEFAULT_DATABASE_WAIT_TIMEOUT_S,
    ) -> None:
        self.url = url
        self.engine = create_engine(url, pool_size, wait_timeout_s)
        self.sessions = session_factory(self.engine)
        self.wait_timeout_s = wait_timeout_s
        self.outage = OutageLog()
        # A statement that ran ends an outage (one log line); a cheap check otherwise.
        event.listen(self.engine.sync_engine, "after_cursor_execute", self._statement_ran)
        # For single-statement reads (authentication, the poll). On PostgreSQL without the
        # BEGIN and ROLLBACK around them: measured 400 -> 290 us of CPU per read. Not on
        # SQLite, where switching the mode costs a trip to aiosqlite's thread each time.
        self.reads: AsyncEngine = (
            self.engine
            if url.startswith("sqlite")
            else self.engine.execution_options(isolation_level="AUTOCOMMIT")
        )
        # SQLite has one writer at a time. Queuing this process's writers here is cheaper
        # than SQLite's busy handler, which sleeps and retries (p99 of seconds under load).
        # Other processes (CLI commands) still meet the busy timeout.
        self._writer: asyncio.Lock | None = asyncio.Lock() if url.startswith("sqlite") else None

    def _statement_ran(self, *_args: Any) -> None:
        if self.outage.down:
            self.outage.succeeded()

    @contextlib.asynccontextmanager
    async def _write_turn(self) -> AsyncIterator[None]:
        """SQLite: this process's turn to write, DatabaseBusy (503) after wait_timeout_s.
        PostgreSQL: at once (the pool's own timeout bounds the wait for a connection)."""
        if self._writer is None:
            yield
            return
        try:
            async with asyncio.timeout(self.wait_timeout_s):
                await self._writer.acquire()
        except TimeoutError:
            raise DatabaseBusy("the SQLite write lock was not free in time") from None
        try:
            yield
        finally:
            self._writer.release()

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A session in a transaction: committed when the block ends, rolled back on error."""
        async with self._write_turn(), self.sessions() as session, session.begin():
            yield session

    @contextlib.asynccontextmanager
    async def write_connection(self) -> AsyncIterator[AsyncConnection]:
        """A Core connection in a transaction, for single statements."""
        async with self._write_turn(), self.engine.begin() as conn:
            yield conn

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    async def dispose(self) -> None:
        await self.engine.dispose()

"""Fixtures for the cloud tests: both database backends, for real.

``database_url`` is parametrised over SQLite (a file) and PostgreSQL (a throwaway server,
tests/support/postgres.py, started once per session), so every test that uses the database
runs on both. Each test starts from empty tables. A missing PostgreSQL fails the run.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from iotistic_cloud.api.app import create_app
from iotistic_cloud.composition import Cloud
from iotistic_cloud.db.engine import Database
from iotistic_cloud.db.migrate import upgrade
from iotistic_cloud.db.models import Base
from iotistic_cloud.settings import Settings, mqtt_broker
from iotistic_cloud.settings import database_url as async_url
from sqlalchemy import text

from tests.cloud.device_kit import ADMIN_TOKEN, create_key
from tests.support.postgres import PostgresServer, postgres_or_fail

BACKENDS = ["sqlite", "postgresql"]


class SettableClock:
    """The cloud's clock in tests: real time until a test moves it."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += timedelta(seconds=seconds)


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """One PostgreSQL server for the session; each user creates its own database in it."""
    with postgres_or_fail("the cloud tests") as server:
        yield server


@pytest.fixture(scope="session", params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'cloud.sqlite'}"
    server: PostgresServer = request.getfixturevalue("postgres")
    return server.create_database("cloud_tests")


@pytest.fixture
def empty_database_url(
    database_url: str, request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[str]:
    """A new, empty database on the same backend (plain sqlite:// or postgresql:// URL)."""
    if database_url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path / 'empty.sqlite'}"
        return
    server: PostgresServer = request.getfixturevalue("postgres")
    name = f"empty_{uuid.uuid4().hex[:12]}"
    url = server.create_database(name)
    try:
        yield url
    finally:
        server.drop_database(name)


@pytest.fixture(scope="session")
async def migrated(database_url: str) -> AsyncIterator[Database]:
    database = Database(async_url(database_url))
    await upgrade(database.engine)
    try:
        yield database
    finally:
        await database.dispose()


async def wipe(database: Database) -> None:
    tables = [table.name for table in reversed(Base.metadata.sorted_tables)]
    async with database.engine.begin() as conn:
        if database.dialect == "postgresql":
            await conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
        else:
            for table in tables:
                await conn.execute(text(f"DELETE FROM {table}"))


@pytest.fixture
async def db(migrated: Database) -> Database:
    await wipe(migrated)
    return migrated


@pytest.fixture
def clock() -> SettableClock:
    return SettableClock()


def make_settings(data_dir: Path, database_url: str, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "database_url": database_url,
        "data_dir": data_dir,
        "admin_token": ADMIN_TOKEN,
        "public_url": None,
        "mqtt": mqtt_broker("mqtt://127.0.0.1:1883", None),
        "offline_after_s": 60,
        "key_exchange_ttl_s": 600,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture
def settings(tmp_path: Path, db: Database) -> Settings:
    return make_settings(tmp_path, db.url)


@pytest.fixture
def app(settings: Settings, db: Database, clock: SettableClock) -> FastAPI:
    return create_app(settings, database=db, clock=clock, migrate_on_start=False)


@pytest.fixture
def cloud(app: FastAPI) -> Cloud:
    built: Cloud = app.state.cloud
    return built


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://cloud.test") as http:
        yield http


@pytest.fixture
async def early_client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    """For requests refused before any query (authentication, limits, validation): its
    database is never created, so these tests run once instead of once per backend."""
    database = Database(async_url(f"sqlite:///{tmp_path / 'never-created.sqlite'}"))
    app = create_app(make_settings(tmp_path, database.url), database=database)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://cloud.test") as http:
        yield http
    await database.dispose()
    assert not (tmp_path / "never-created.sqlite").exists()


@pytest.fixture
async def key(client: httpx.AsyncClient) -> str:
    """A provisioning key without limits."""
    return await create_key(client, fleet="tests")

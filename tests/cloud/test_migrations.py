"""The shipped migrations build exactly the models' schema, on both databases."""

from __future__ import annotations

import asyncio

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from iotistic_cloud.db.engine import Database
from iotistic_cloud.db.migrate import HEAD, current_revision, head_revision, upgrade
from iotistic_cloud.db.models import Base
from iotistic_cloud.settings import database_url as async_url
from sqlalchemy import Connection


def _differences(connection: Connection) -> list[object]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, Base.metadata))


async def test_schema_matches_the_models(migrated: Database) -> None:
    async with migrated.engine.connect() as conn:
        assert await conn.run_sync(_differences) == []
    assert await current_revision(migrated.engine) == head_revision() == HEAD


async def test_replicas_upgrading_together(empty_database_url: str) -> None:
    """Each replica runs the upgrade at start: one migrates, the others wait and find it done."""
    replicas = [Database(async_url(empty_database_url)) for _ in range(3)]
    try:
        assert await current_revision(replicas[0].engine) is None
        await asyncio.gather(*(upgrade(replica.engine) for replica in replicas))
        await upgrade(replicas[0].engine)
        for replica in replicas:
            assert await current_revision(replica.engine) == head_revision()
    finally:
        for replica in replicas:
            await replica.dispose()

"""The shipped migrations build exactly the models' schema, on both databases, and a
database of a newer release is refused with a clear message."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from iotistic_cloud.db.engine import Database
from iotistic_cloud.db.migrate import (
    HEAD,
    alembic_config,
    current_revision,
    head_revision,
    upgrade,
)
from iotistic_cloud.db.models import Base
from iotistic_cloud.settings import database_url as async_url
from sqlalchemy import Connection, text

from tests.support.cloud_process import CloudProcess


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


def _upgrade_to(connection: Connection, revision: str) -> None:
    command.upgrade(alembic_config(connection), revision)


async def test_0002_counts_the_history_already_stored(empty_database_url: str) -> None:
    database = Database(async_url(empty_database_url))
    try:
        async with database.engine.begin() as conn:
            await conn.run_sync(_upgrade_to, "0001")
            await conn.execute(
                text(
                    "INSERT INTO devices (uuid, device_id, api_key_hash, mqtt_username,"
                    " mqtt_password_hash, registered_at, target_state, target_hash,"
                    " target_version, target_etag, target_body, target_updated_at)"
                    " VALUES ('u1', 'd1', 'h1', 'm1', 'p', :now, '{}', 'x', 0, 'e', '{}', :now)"
                ),
                {"now": datetime.now(UTC)},
            )
            for sequence in (1, 2):
                await conn.execute(
                    text(
                        "INSERT INTO device_reports"
                        ' (device_uuid, sequence, "full", reported_at, received_at, body)'
                        " VALUES ('u1', :sequence, false, 't', :now, '{}')"
                    ),
                    {"sequence": sequence, "now": datetime.now(UTC)},
                )
        await upgrade(database.engine)
        async with database.engine.connect() as conn:
            count = (await conn.execute(text("SELECT history_count FROM devices"))).scalar()
        assert count == 2
    finally:
        await database.dispose()


async def test_a_database_of_a_newer_release_is_a_clear_error(
    empty_database_url: str, tmp_path: Path
) -> None:
    """A newer release migrated the database past what this one knows: every command, and
    serve, stop with one clear line (and change nothing), not an Alembic traceback."""
    database = Database(async_url(empty_database_url))
    try:
        await upgrade(database.engine)
        async with database.engine.begin() as conn:
            await conn.execute(text("UPDATE alembic_version SET version_num = '0999'"))
    finally:
        await database.dispose()
    cloud = CloudProcess(tmp_path, database_url=empty_database_url)
    for args in (["devices", "list"], ["serve", "--port", "0"]):
        result = cloud.cli(*args)
        assert result.returncode == 1, result
        assert "Traceback" not in result.stderr
        assert result.stderr.splitlines()[-1] == (
            "error: the database schema is at revision 0999, which this release of "
            f"iotistic-cloud does not know (it knows up to {HEAD}): a newer release upgraded "
            "it. Run that release, or restore a backup taken before the upgrade "
            "(docs/cloud.md, Backup and restore)"
        ), result.stderr
    database = Database(async_url(empty_database_url))
    try:
        assert await current_revision(database.engine) == "0999"
    finally:
        await database.dispose()

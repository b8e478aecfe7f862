"""Bring the schema to the newest migration; safe when several processes start at once.

Alembic is imported only when the schema is behind: a CLI command on a current database
checks one row and skips loading it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Final

from sqlalchemy import Connection, inspect, text
from sqlalchemy.ext.asyncio import AsyncEngine

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS: Final = Path(__file__).resolve().parent / "migrations"
# The newest revision in migrations/versions; a test checks it against Alembic's own answer.
HEAD: Final = "0005"
# Any constant works; it only has to be the same in every replica.
_PG_LOCK_KEY: Final = 0x10715C10


def alembic_config(connection: Connection | None = None) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


class SchemaTooNew(Exception):
    """The database was migrated by a newer release than this one."""

    def __init__(self, revision: str) -> None:
        super().__init__(
            f"the database schema is at revision {revision}, which this release of "
            f"iotistic-cloud does not know (it knows up to {HEAD}): a newer release "
            "upgraded it. Run that release, or restore a backup taken before the upgrade "
            "(docs/cloud.md, Backup and restore)"
        )
        self.revision = revision


async def upgrade(engine: AsyncEngine) -> None:
    """Raises SchemaTooNew (before changing anything) for a database of a newer release."""
    current = await current_revision(engine)
    if current == HEAD:
        return
    if current is not None and current not in known_revisions():
        raise SchemaTooNew(current)
    async with engine.begin() as conn:
        # One transaction holding the schema lock: a second replica (or a CLI command) waits,
        # then finds the schema current. DDL is transactional on both databases.
        if conn.dialect.name == "postgresql":
            await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})
        else:
            await conn.exec_driver_sql("BEGIN IMMEDIATE")
        await conn.run_sync(_upgrade)


def _upgrade(connection: Connection) -> None:
    from alembic import command

    command.upgrade(alembic_config(connection), "head")


async def current_revision(engine: AsyncEngine) -> str | None:
    async with engine.connect() as conn:
        return await conn.run_sync(_current)


def _current(connection: Connection) -> str | None:
    # The table Alembic keeps its revision in; absent on an empty database.
    if not inspect(connection).has_table("alembic_version"):
        return None
    revision = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
    return None if revision is None else str(revision)


def head_revision() -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def known_revisions() -> set[str]:
    from alembic.script import ScriptDirectory

    scripts = ScriptDirectory.from_config(alembic_config())
    return {script.revision for script in scripts.walk_revisions()}

"""Alembic environment: runs on the connection that db.migrate hands over, never on its own."""

from __future__ import annotations

from alembic import context
from iotistic_cloud.db.models import Base


def run_migrations() -> None:
    connection = context.config.attributes.get("connection")
    if connection is None or context.is_offline_mode():
        raise RuntimeError(
            "run migrations through iotistic_cloud.db.migrate.upgrade "
            "(iotistic-cloud serve and every CLI command do)"
        )
    # Batch mode: SQLite can only alter a table by copying it.
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=True,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


run_migrations()

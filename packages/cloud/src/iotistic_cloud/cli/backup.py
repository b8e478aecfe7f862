"""``iotistic-cloud backup <file>``: an online, consistent copy of the SQLite database.

PostgreSQL has its own tools for this (pg_dump); docs/cloud.md, "Backup and restore",
describes both procedures and the restore.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy.engine import make_url

from ..db.backup import BackupError, backup_sqlite
from .errors import EXIT_USAGE, CliError
from .runtime import load_settings


def backup(
    file: Annotated[Path, typer.Argument(help="The backup file to create (mode 0600).")],
) -> None:
    """Copy the SQLite database while the cloud runs (a consistent snapshot)."""
    settings = load_settings()
    if not settings.is_sqlite:
        raise CliError(
            "backup copies a SQLite database; for PostgreSQL use pg_dump "
            "(docs/cloud.md, Backup and restore)",
            EXIT_USAGE,
        )
    # Not migrated first, unlike the other commands: a backup is what one takes before.
    source = Path(make_url(settings.database_url).database or "")
    try:
        backup_sqlite(source, file)
    except BackupError as exc:
        raise CliError(str(exc)) from None
    typer.echo(f"backed up {source} to {file}")

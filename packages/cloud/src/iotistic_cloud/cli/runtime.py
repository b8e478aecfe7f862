"""Run one command against the database: settings, migrations, services, clean shutdown."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from ..composition import Cloud, build_cloud
from ..db.migrate import SchemaTooNew, upgrade
from ..services.errors import InvalidInput, ServiceError
from ..settings import Settings, SettingsError
from .errors import EXIT_USAGE, CliError

T = TypeVar("T")


def load_settings() -> Settings:
    try:
        return Settings.from_env()
    except SettingsError as exc:
        raise CliError(str(exc), EXIT_USAGE) from None


def run(action: Callable[[Cloud], Awaitable[T]]) -> T:
    settings = load_settings()

    async def go() -> T:
        cloud = build_cloud(settings)
        try:
            await upgrade(cloud.database.engine)
            return await action(cloud)
        finally:
            await cloud.database.dispose()

    try:
        return asyncio.run(go())
    except InvalidInput as exc:
        raise CliError(exc.message, EXIT_USAGE) from None
    except ServiceError as exc:
        raise CliError(exc.message) from None
    except SchemaTooNew as exc:
        raise CliError(str(exc)) from None
    except (OSError, SQLAlchemyError) as exc:
        raise CliError(f"database {_safe_url(settings.database_url)}: {_reason(exc)}") from None


def _safe_url(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


def _reason(exc: Exception) -> str:
    # SQLAlchemy's own text adds the statement and a link; the driver's first line is enough.
    cause = getattr(exc, "orig", None) or exc
    text = str(cause).strip().splitlines()
    return f"{type(cause).__name__}: {text[0]}" if text else type(cause).__name__

"""The ``iotistic-cloud`` application: command registration and the process entry point."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from ..admin_token import admin_token
from ..services.errors import InvalidInput, ServiceError
from ..settings import SettingsError
from . import backup, devices, keys, logs
from .errors import EXIT_FAILED, EXIT_USAGE, CliError
from .runtime import load_settings

HELP = (
    "Iotistic cloud: provisioning, target states and reported states of a device fleet.\n\n"
    "Every command reads DATABASE_URL (default: SQLite in $CLOUD_DATA_DIR, ./data/cloud) "
    "and brings the schema up to date first."
)
LOG_LEVELS = ("critical", "error", "warning", "info", "debug")


def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port; 0 picks a free one.")] = 3002,
    log_level: Annotated[str, typer.Option(help="critical, error, warning, info, debug.")] = "info",
    access_log: Annotated[bool, typer.Option(help="Log every request.")] = False,
) -> None:
    """Serve the device, provisioning and admin APIs."""
    if log_level.lower() not in LOG_LEVELS:
        raise CliError(f"--log-level must be one of {', '.join(LOG_LEVELS)}", EXIT_USAGE)
    # Imported here: the server stack (FastAPI, uvicorn) is not needed by other commands.
    from .serve import serve as run_server

    run_server(host, port, log_level.lower(), access_log)


def admin_token_command() -> None:
    """Print the admin API token (ADMIN_TOKEN, else the generated <data dir>/admin.token)."""
    try:
        typer.echo(admin_token(load_settings()))
    except SettingsError as exc:
        raise CliError(str(exc)) from None


def build_app() -> typer.Typer:
    # Plain tracebacks for real bugs only: expected failures are handled in main().
    app = typer.Typer(
        name="iotistic-cloud",
        help=HELP,
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        context_settings={"help_option_names": ["--help", "-h"]},
    )
    app.command("serve")(serve)
    app.add_typer(keys.app, name="keys")
    app.add_typer(devices.app, name="devices")
    app.command("logs")(logs.logs)
    app.command("admin-token")(admin_token_command)
    app.command("backup")(backup.backup)
    return app


def main() -> None:
    try:
        build_app()(prog_name="iotistic-cloud")
    except CliError as exc:
        sys.stderr.write(f"error: {exc.message}\n")
        sys.exit(exc.exit_code)
    except ServiceError as exc:
        sys.stderr.write(f"error: {exc.message}\n")
        sys.exit(EXIT_USAGE if isinstance(exc, InvalidInput) else EXIT_FAILED)
    except SettingsError as exc:
        sys.stderr.write(f"error: {exc}\n")
        sys.exit(EXIT_USAGE)
    except KeyboardInterrupt:
        sys.exit(130)

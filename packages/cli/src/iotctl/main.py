"""The `iotctl` application: command registration and the process entry point.

Only typer is imported here. Each command imports the HTTP client and rich when it runs, so
that start-up costs only what the chosen command uses.
"""

from __future__ import annotations

import sys

import typer

from .commands import anomalies, apps, config, logs, provisioning, services, simulation, system
from .errors import CliError

HELP = (
    "Manage this device's Iotistic agent through its local Device API.\n\n"
    "The API is found at DEVICE_API_URL (default http://127.0.0.1:$DEVICE_API_PORT, port "
    "48484); the key comes from IOTCTL_API_KEY or the agent's device-api.key file next to "
    "DATABASE_PATH."
)


def build_app() -> typer.Typer:
    # Plain tracebacks for real bugs: expected failures are CliErrors, handled in main().
    app = typer.Typer(
        name="iotctl",
        help=HELP,
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        context_settings={"help_option_names": ["--help", "-h"]},
    )
    app.command("provision")(provisioning.provision)
    app.command("deprovision")(provisioning.deprovision)
    app.command("factory-reset")(system.factory_reset)
    app.add_typer(config.app, name="config")
    app.command("status")(system.status)
    app.command("diagnostics")(system.diagnostics)
    app.command("diag", help="Short alias of diagnostics.")(system.diagnostics)
    app.command("restart")(system.restart)
    app.command("logs")(logs.logs)
    app.add_typer(apps.app, name="apps")
    app.add_typer(services.app, name="services")
    app.add_typer(simulation.app, name="simulation")
    app.command("anomalies")(anomalies.anomalies)
    app.command("help")(system.help_)
    app.command("version")(system.version)
    return app


def main() -> None:
    try:
        build_app()(prog_name="iotctl")
    except CliError as exc:
        sys.stderr.write(f"error: {exc.message}\n")
        sys.exit(exc.exit_code)

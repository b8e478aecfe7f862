"""Device-wide commands: status, diagnostics, agent restart, factory reset, version, help."""

from __future__ import annotations

import typer

from .options import JsonFlag, YesFlag, confirm_or_abort


def status(json_output: JsonFlag = False) -> None:
    """Show the device's identity, connectivity, apps and resource use."""
    from ..client import connect
    from ..output import print_json, print_pairs

    with connect() as api:
        device = api.get("/v1/device")
        url = api.url
    if json_output:
        print_json(device)
        return
    from ..formatting import status_pairs

    print_pairs(status_pairs(device, url))


def diagnostics(json_output: JsonFlag = False) -> None:
    """Run the agent's checks (engine, database, cloud, MQTT); exit 1 when any fails."""
    from ..client import connect
    from ..errors import CliError
    from ..formatting import DIAGNOSTIC_COLUMNS, diagnostic_rows, diagnostics_failed
    from ..output import print_json, print_table

    with connect() as api:
        result = api.get("/v1/diagnostics")
    failed = diagnostics_failed(result)
    if json_output:
        print_json(result)
    else:
        print_table(DIAGNOSTIC_COLUMNS, diagnostic_rows(result))
    if failed:
        # The details are already on stdout; stderr says only why the exit code is 1.
        raise CliError("diagnostics found a problem")


def restart() -> None:
    """Restart the agent (containers keep running)."""
    from ..client import connect
    from ..output import message

    with connect() as api:
        api.post("/v1/agent/restart")
    message("the agent is restarting")


def factory_reset(yes: YesFlag = False) -> None:
    """Wipe everything: apps, their data, the database and the device identity.

    Removes every container, network and volume of the agent, its database and the device
    identity, then restarts the agent as a new device. Asks first unless --yes.
    """
    from ..client import connect
    from ..output import message

    confirm_or_abort(
        "Factory reset deletes all apps, their data and the device identity. Continue?", yes
    )
    with connect() as api:
        api.post("/v1/factory-reset", {"confirm": True})
    message("factory reset started: the agent restarts as a new device")


def version() -> None:
    """Show the version of iotctl."""
    from .. import __version__

    typer.echo(f"iotctl {__version__}")


def help_(ctx: typer.Context) -> None:
    """Show all commands."""
    # With rich installed, typer prints the help itself and returns an empty string.
    text = ctx.find_root().get_help()
    if text:
        typer.echo(text)

"""`iotctl apps`: whole apps (stacks of services) at once."""

from __future__ import annotations

from typing import Annotated

import typer

from .options import JsonFlag, YesFlag, confirm_or_abort

app = typer.Typer(help="Manage apps: every service of an app at once.", no_args_is_help=True)

AppId = Annotated[int, typer.Argument(help="The app's id, as in `apps list`.", metavar="APP_ID")]


@app.command("list")
def list_apps(json_output: JsonFlag = False) -> None:
    """List the apps and the state of their services."""
    from ..client import connect
    from ..formatting import APP_STATE_COLUMNS, app_state_rows
    from ..output import message, print_json, print_table

    with connect() as api:
        apps = api.get("/v2/applications/state")
    if json_output:
        print_json(apps)
    elif not apps:
        message("no apps")
    else:
        print_table(APP_STATE_COLUMNS, app_state_rows(apps))


@app.command("info")
def info(app_id: AppId, json_output: JsonFlag = False) -> None:
    """Show one app and its services."""
    from ..client import connect
    from ..formatting import SERVICE_COLUMNS, service_rows
    from ..output import print_json, print_table

    with connect() as api:
        details = api.get(f"/v1/apps/{app_id}")
    if json_output:
        print_json(details)
        return
    from ..output import message

    message(f"App {details.get('appId', app_id)} ({details.get('appName') or '-'})")
    print_table(SERVICE_COLUMNS, service_rows(details.get("services") or []))


def _action(path: str, done: str, body: object = None) -> None:
    from ..client import connect
    from ..output import message

    with connect() as api:
        api.post(path, body)
    message(done)


@app.command("start")
def start(app_id: AppId) -> None:
    """Start every service of the app (clears a previous `apps stop`)."""
    _action(f"/v1/apps/{app_id}/start", f"app {app_id} started")


@app.command("stop")
def stop(app_id: AppId) -> None:
    """Stop every service of the app until `apps start`.

    The services stay stopped, across agent restarts, until `apps start` or a new target
    for the app.
    """
    _action(f"/v1/apps/{app_id}/stop", f"app {app_id} stopped")


@app.command("restart")
def restart(app_id: AppId) -> None:
    """Recreate every service of the app."""
    _action(f"/v2/applications/{app_id}/restart", f"app {app_id} restarting")


@app.command("purge")
def purge(app_id: AppId, yes: YesFlag = False) -> None:
    """Remove the app's containers and volumes (its data); asks first unless --yes.

    The app then comes back from the target with empty volumes.
    """
    confirm_or_abort(
        f"Purge deletes the containers and all volume data of app {app_id}. Continue?", yes
    )
    _action(f"/v2/applications/{app_id}/purge", f"app {app_id} purged")

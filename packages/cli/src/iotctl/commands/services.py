"""`iotctl services`: single services (containers).

A REF is passed to the agent as given, quoted as one path segment; the agent resolves
container names, `<service>`, `<service>-<serviceId>` and `<appId>/<service>`.
"""

from __future__ import annotations

from typing import Annotated

import typer

from .logs import FollowFlag, print_log_stream
from .options import JsonFlag

app = typer.Typer(help="Manage single services (containers).", no_args_is_help=True)

Ref = Annotated[
    str,
    typer.Argument(
        help="Container name, SERVICE, SERVICE-SERVICE_ID (as `services list` shows) or "
        "APP_ID/SERVICE.",
        metavar="REF",
    ),
]
TailOption = Annotated[
    int, typer.Option("--lines", "-n", "--tail", min=0, help="How many recent lines to show first.")
]


def _path(ref: str, suffix: str = "") -> str:
    from ..client import path_segment

    return f"/v1/services/{path_segment(ref)}{suffix}"


@app.command("list")
def list_services(
    app_id: Annotated[
        int | None, typer.Argument(help="Only the services of this app.", metavar="[APP_ID]")
    ] = None,
    json_output: JsonFlag = False,
) -> None:
    """List services with their ref, status, container, image and ports."""
    from ..client import connect
    from ..formatting import SERVICE_COLUMNS, service_rows
    from ..output import message, print_json, print_table

    params = {"appId": app_id} if app_id is not None else None
    with connect() as api:
        result = api.get("/v1/services", params)
    services = result.get("services") or []
    if json_output:
        print_json(result)
    elif not services:
        message("no services")
    else:
        print_table(SERVICE_COLUMNS, service_rows(services))


@app.command("info")
def info(ref: Ref, json_output: JsonFlag = False) -> None:
    """Show everything about one service."""
    from ..client import connect
    from ..formatting import service_pairs
    from ..output import print_json, print_pairs

    with connect() as api:
        service = api.get(_path(ref))
    if json_output:
        print_json(service)
    else:
        print_pairs(service_pairs(service))


def _action(ref: str, verb: str, done: str) -> None:
    from ..client import connect
    from ..output import message

    with connect() as api:
        api.post(_path(ref, f"/{verb}"))
    message(f"service {ref} {done}")


@app.command("start")
def start(ref: Ref) -> None:
    """Start a service (clears a previous `services stop`)."""
    _action(ref, "start", "started")


@app.command("stop")
def stop(ref: Ref) -> None:
    """Stop a service; it stays stopped until `services start` or a new target."""
    _action(ref, "stop", "stopped")


@app.command("restart")
def restart(ref: Ref) -> None:
    """Restart a service's container, even when nothing changed; clears a given-up failure."""
    _action(ref, "restart", "restarted")


@app.command("logs")
def logs(ref: Ref, follow: FollowFlag = False, lines: TailOption = 100) -> None:
    """Show a service's recent output; with --follow, keep streaming until Ctrl-C."""
    from ..client import connect

    params = {"tail": lines, "follow": "true" if follow else "false"}
    with connect() as api:
        print_log_stream(lambda: api.stream_ndjson(_path(ref, "/logs"), params))

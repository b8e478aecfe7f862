"""`iotctl config`: the agent's runtime settings (overrides persist and apply at once)."""

from __future__ import annotations

from typing import Annotated

import typer

from .options import JsonFlag

app = typer.Typer(help="Show and change the agent's settings.", no_args_is_help=True)

CLOUD_KEY = "CLOUD_API_ENDPOINT"
Key = Annotated[
    str,
    typer.Argument(
        help="LOG_LEVEL, RECONCILIATION_INTERVAL_MS, CLOUD_API_ENDPOINT or DEVICE_NAME.",
        metavar="KEY",
    ),
]


def _path(key: str) -> str:
    from ..client import path_segment

    # Keys are environment-variable names; accept `log_level` as well.
    return f"/v1/config/{path_segment(key.strip().upper())}"


@app.command("show")
def show(json_output: JsonFlag = False) -> None:
    """Show every setting with its value, source and default."""
    from ..client import connect
    from ..formatting import CONFIG_COLUMNS, config_rows
    from ..output import print_json, print_table

    with connect() as api:
        result = api.get("/v1/config")
    if json_output:
        print_json(result)
    else:
        print_table(CONFIG_COLUMNS, config_rows(result.get("config") or {}))


@app.command("get")
def get(key: Key, json_output: JsonFlag = False) -> None:
    """Show one setting."""
    from ..client import connect
    from ..formatting import config_pairs
    from ..output import print_json, print_pairs

    with connect() as api:
        entry = api.get(_path(key))
    if json_output:
        print_json(entry)
    else:
        print_pairs(config_pairs(entry))


@app.command("set")
def set_(key: Key, value: Annotated[str, typer.Argument(help="The new value.")]) -> None:
    """Change a setting; it is validated, applied at once and kept across restarts."""
    _put(key, value)


@app.command("reset")
def reset() -> None:
    """Remove every override: back to the environment and the defaults."""
    from ..client import connect
    from ..output import message

    with connect() as api:
        api.delete("/v1/config")
    message("configuration reset: every override removed")


@app.command("set-api")
def set_api(url: Annotated[str, typer.Argument(help="http(s) URL of the cloud API.")]) -> None:
    """Set the cloud API endpoint (CLOUD_API_ENDPOINT)."""
    _put(CLOUD_KEY, url)


@app.command("get-api")
def get_api() -> None:
    """Show the cloud API endpoint (CLOUD_API_ENDPOINT)."""
    from ..client import connect
    from ..output import message

    with connect() as api:
        entry = api.get(_path(CLOUD_KEY))
    message(entry.get("value") or "(not set)")


def _put(key: str, value: str) -> None:
    from ..client import connect
    from ..output import message

    with connect() as api:
        entry = api.put(_path(key), {"value": value})
    message(f"{entry.get('key', key)} = {entry.get('value', value)}")

"""``iotistic-cloud keys``: create, list and revoke provisioning keys."""

from __future__ import annotations

from typing import Annotated

import typer
from pydantic import ValidationError

from ..composition import Cloud
from ..services.keys import NewKey
from ..services.validation import from_validation_error
from ..views import CreatedKeyView, KeyView, created_key_view, key_view
from .durations import parse_duration
from .errors import EXIT_USAGE, CliError
from .output import print_fields, print_json, print_table
from .runtime import run

app = typer.Typer(help="Provisioning keys: a device needs one to register.", no_args_is_help=True)


@app.command("create")
def create(
    fleet: Annotated[str, typer.Option(help="Fleet the devices join.")] = "default",
    max_devices: Annotated[
        int | None, typer.Option("--max-devices", help="How many devices it may register.")
    ] = None,
    expires_in: Annotated[
        str | None, typer.Option("--expires-in", help="Lifetime: 3600s, 30m, 1h, 7d.")
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print only the key.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Create a key. It is shown once: only its hash is stored."""
    try:
        expires_in_s = None if expires_in is None else parse_duration(expires_in)
        request = NewKey(fleet=fleet, maxDevices=max_devices, expiresInS=expires_in_s)
    except ValidationError as exc:
        raise CliError(from_validation_error("invalid key", exc).message, EXIT_USAGE) from None
    except ValueError as exc:
        raise CliError(f"--expires-in: {exc}", EXIT_USAGE) from None

    async def action(cloud: Cloud) -> CreatedKeyView:
        now = cloud.clock()
        created = await cloud.keys.create(request, now)
        return created_key_view(created.record, created.key, now)

    view = run(action)
    if quiet:
        typer.echo(view.key)
    elif as_json:
        print_json(view)
    else:
        print_fields(
            [
                ("key", view.key),
                ("id", view.id),
                ("fleet", view.fleet),
                ("max devices", view.maxDevices or "unlimited"),
                ("expires", view.expiresAt or "never"),
            ]
        )
        typer.echo("Store the key now: it cannot be shown again.")


@app.command("list")
def list_(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """List keys (never the keys themselves: id, prefix, usage, expiry)."""

    async def action(cloud: Cloud) -> list[KeyView]:
        now = cloud.clock()
        return [key_view(key, now) for key in await cloud.keys.list()]

    views = run(action)
    if as_json:
        print_json(views)
        return
    rows = [
        (
            v.id,
            v.fleet,
            f"{v.prefix}...",
            v.status,
            f"{v.devicesRegistered}/{v.maxDevices or 'unlimited'}",
            v.expiresAt or "never",
        )
        for v in views
    ]
    print_table(("ID", "FLEET", "PREFIX", "STATUS", "DEVICES", "EXPIRES"), rows)


@app.command("revoke")
def revoke(key_id: Annotated[int, typer.Argument(help="The key's id (keys list).")]) -> None:
    """Revoke a key: it registers no more devices (registered ones stay)."""

    async def action(cloud: Cloud) -> None:
        await cloud.keys.revoke(key_id, cloud.clock())

    run(action)
    typer.echo(f"revoked key {key_id}")

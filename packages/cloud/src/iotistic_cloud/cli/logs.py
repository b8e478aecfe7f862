"""``iotistic-cloud logs <device>``: a device's logs from the database, optionally followed."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Annotated, Any, Final

import typer
from iotistic_contracts.provisioning import normalize_uuid

from ..composition import Cloud
from ..services.log_query import check_limit, parse_filter
from .errors import EXIT_USAGE, CliError
from .runtime import run

DEFAULT_LINES: Final = 100
# Control characters (Unicode category Cc) but tab: device text must not drive the terminal.
_CONTROL: Final = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f]")
_NAMED: Final = {"\n": "\\n", "\r": "\\r"}


def logs(
    device: Annotated[str, typer.Argument(help="The device's uuid.")],
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing new records (Ctrl-C ends).")
    ] = False,
    lines: Annotated[
        int, typer.Option("--lines", "-n", help="How many of the newest records (1..10000).")
    ] = DEFAULT_LINES,
    service: Annotated[str | None, typer.Option(help="Only this service's containers.")] = None,
    app: Annotated[str | None, typer.Option(help="Only this app's containers.")] = None,
    level: Annotated[
        str | None, typer.Option(help="This level and above: debug, info, warn, error.")
    ] = None,
    source: Annotated[str | None, typer.Option(help="agent or container.")] = None,
    since: Annotated[
        str | None, typer.Option(help="From this time: RFC 3339, or a duration ago (15m, 2h).")
    ] = None,
    until: Annotated[str | None, typer.Option(help="Up to this time (same forms).")] = None,
    grep: Annotated[
        str | None, typer.Option(help="Only messages containing this (any case).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print NDJSON records.")] = False,
) -> None:
    """A device's logs, oldest first: agent records and its containers' output."""
    try:
        device_uuid = normalize_uuid(device)
    except ValueError as exc:
        raise CliError(f"device: {exc}", EXIT_USAGE) from None
    show = _json_line if as_json else human_line

    async def action(cloud: Cloud) -> None:
        where = parse_filter(
            cloud.clock(),
            service=service,
            app=app,
            level=level,
            source=source,
            since=since,
            until=until,
            text=grep,
        )
        check_limit(lines)
        if not follow:
            page = await cloud.logs.query(device_uuid, where, lines)
            _print(page.records, show)
            return
        async for batch in cloud.logs.follow(device_uuid, where, lines):
            _print(batch, show)

    try:
        run(action)
    except KeyboardInterrupt:
        return  # Ctrl-C is how -f ends


def human_line(record: dict[str, Any]) -> str:
    """``<timestamp> <LEVEL> <app/service (stream) | component> <message>``, with control
    characters the device sent shown escaped (``\\x1b``, ``\\r``, ``\\n``)."""
    if record["source"] == "container":
        origin = f"{record.get('app') or '-'}/{record.get('service') or '-'}"
        if record.get("stream"):
            origin += f" ({record['stream']})"
    else:
        origin = record.get("component") or "agent"
    cut = " [truncated]" if record["truncated"] else ""
    line = f"{record['timestamp']} {record['level'].upper():<5} {origin} {record['message']}{cut}"
    return escape_controls(line)


def escape_controls(text: str) -> str:
    """Each control character but tab as ``\\n``, ``\\r`` or ``\\xNN``."""
    return _CONTROL.sub(lambda m: _NAMED.get(m.group(), f"\\x{ord(m.group()):02x}"), text)


def _json_line(record: dict[str, Any]) -> str:
    return json.dumps(record, separators=(",", ":"))


def _print(records: list[dict[str, Any]], show: Callable[[dict[str, Any]], str]) -> None:
    if records:
        typer.echo("\n".join(show(r) for r in records))

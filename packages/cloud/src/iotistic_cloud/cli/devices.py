"""``iotistic-cloud devices``: list, inspect, target, delete devices and read their reports."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from iotistic_contracts.provisioning import normalize_uuid

from ..composition import Cloud
from ..limits import MAX_BODY_BYTES
from ..services.targets import TargetUpdate, parse_target
from ..views import DeviceDetail, DeviceSummary, ReportView, device_detail, device_summary
from ..views import report_view as to_report_view
from .errors import EXIT_USAGE, CliError
from .output import print_fields, print_json, print_table
from .runtime import run

app = typer.Typer(help="Registered devices.", no_args_is_help=True)
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]
UuidArgument = Annotated[str, typer.Argument(help="The device's uuid.")]


def _uuid(value: str) -> str:
    try:
        return normalize_uuid(value)
    except ValueError as exc:
        raise CliError(f"uuid: {exc}", EXIT_USAGE) from None


@app.command("list")
def list_(as_json: JsonOption = False) -> None:
    """List devices with their online status and target version."""

    async def action(cloud: Cloud) -> list[DeviceSummary]:
        now, offline_after = cloud.clock(), cloud.settings.offline_after_s
        return [device_summary(d, now, offline_after) for d in await cloud.devices.list()]

    views = run(action)
    if as_json:
        print_json(views)
        return
    rows = [(v.uuid, v.name, v.fleet, v.status, v.lastSeen, v.targetVersion) for v in views]
    print_table(("UUID", "NAME", "FLEET", "STATUS", "LAST SEEN", "TARGET"), rows)


@app.command("show")
def show(uuid: UuidArgument, as_json: JsonOption = False) -> None:
    """Details, target and last reported state of one device."""
    device_uuid = _uuid(uuid)

    async def action(cloud: Cloud) -> DeviceDetail:
        device = await cloud.devices.get(device_uuid)
        return device_detail(device, cloud.clock(), cloud.settings.offline_after_s)

    view = run(action)
    if as_json:
        print_json(view)
        return
    print_fields(
        [
            ("uuid", view.uuid),
            ("device id", view.deviceId),
            ("name", view.name),
            ("type", view.type),
            ("fleet", view.fleet),
            ("status", view.status),
            ("last seen", view.lastSeen),
            ("registered", view.registeredAt),
            ("os", view.osVersion),
            ("agent", view.agentVersion),
            ("mqtt user", view.mqttUsername),
            ("target version", view.targetVersion),
            ("target etag", view.targetEtag),
            ("last report", view.lastReportSequence),
        ]
    )
    typer.echo("target:")
    typer.echo(json.dumps(view.target, indent=2, sort_keys=True))
    typer.echo("reported state:")
    typer.echo(json.dumps(view.reportedState, indent=2, sort_keys=True))


@app.command("set-target")
def set_target(
    uuid: UuidArgument,
    file: Annotated[str, typer.Argument(help="JSON file with {apps, config}; - for stdin.")],
    if_match: Annotated[
        str | None,
        typer.Option(
            "--if-match",
            metavar="VERSION|ETAG",
            help="Only if the target is still this version (or ETag): a concurrent change "
            "is not overwritten (exit 1).",
        ),
    ] = None,
) -> None:
    """Set the device's target state; prints the target version (unchanged if equal)."""
    device_uuid = _uuid(uuid)
    target = parse_target(_read_target(file))

    async def action(cloud: Cloud) -> TargetUpdate:
        return await cloud.targets.set_target(device_uuid, target, cloud.clock(), if_match)

    update = run(action)
    typer.echo(str(update.version))
    if not update.changed:
        typer.echo("target unchanged", err=True)


def _read_target(file: str) -> bytes:
    try:
        if file == "-":
            raw = sys.stdin.buffer.read(MAX_BODY_BYTES + 1)
        else:
            with Path(file).open("rb") as handle:
                raw = handle.read(MAX_BODY_BYTES + 1)
    except OSError as exc:
        raise CliError(f"cannot read {file}: {exc.strerror or exc}", EXIT_USAGE) from None
    if len(raw) > MAX_BODY_BYTES:
        raise CliError(f"{file} is larger than {MAX_BODY_BYTES} bytes", EXIT_USAGE)
    return raw


@app.command("delete")
def delete(uuid: UuidArgument) -> None:
    """Delete the device and its reports; it must provision again to return."""
    device_uuid = _uuid(uuid)

    async def action(cloud: Cloud) -> None:
        await cloud.devices.delete(device_uuid)

    run(action)
    typer.echo(f"deleted {device_uuid}")


@app.command("reports")
def reports(
    uuid: UuidArgument,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="How many, newest.")] = 20,
    as_json: JsonOption = False,
) -> None:
    """The device's latest reports, oldest first."""
    device_uuid = _uuid(uuid)

    async def action(cloud: Cloud) -> list[ReportView]:
        return [to_report_view(r) for r in await cloud.reports.history(device_uuid, limit)]

    views = run(action)
    if as_json:
        print_json(views)
        return
    rows = [
        (v.sequence, "full" if v.full else "diff", v.reportedAt, v.receivedAt, _fields(v.body))
        for v in views
    ]
    print_table(("SEQUENCE", "KIND", "REPORTED AT", "RECEIVED AT", "FIELDS"), rows)


@app.command("anomalies")
def anomalies(
    uuid: UuidArgument,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="How many, newest.")] = 20,
    as_json: JsonOption = False,
) -> None:
    """Anomalies the device detected, newest first."""
    device_uuid = _uuid(uuid)

    async def action(cloud: Cloud) -> list[dict[str, Any]]:
        return await cloud.anomalies.list(device_uuid, limit)

    found = run(action)
    if as_json:
        typer.echo(json.dumps(found, indent=2))
        return
    rows = [
        (a["timestamp"], a["source"], a["metric"], a["value"], a["method"], a["severity"])
        for a in found
    ]
    print_table(("TIMESTAMP", "SOURCE", "METRIC", "VALUE", "METHOD", "SEVERITY"), rows)


def _fields(body: dict[str, object]) -> str:
    """What a report carried, by name (its bookkeeping left out)."""
    return ", ".join(sorted(set(body) - {"full", "sequence", "reportedAt"})) or "-"

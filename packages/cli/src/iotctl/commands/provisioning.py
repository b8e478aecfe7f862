"""Provisioning with the cloud. The agent's routes come in a later release: until an agent
answers them, the commands say so plainly instead of failing with a bare 404."""

from __future__ import annotations

from typing import Annotated

import typer

from .options import JsonFlag

NOT_AVAILABLE = "provisioning is not available in this agent version yet"
_MISSING_ROUTE = frozenset({404, 405})


def provision(
    key: Annotated[
        str, typer.Argument(help="Provisioning key, or 'status'.", metavar="KEY|status")
    ],
    api: Annotated[str | None, typer.Option("--api", help="Cloud API endpoint.")] = None,
    name: Annotated[str | None, typer.Option("--name", help="Device name.")] = None,
    device_type: Annotated[str | None, typer.Option("--type", help="Device type.")] = None,
    json_output: JsonFlag = False,
) -> None:
    """Provision the device with the cloud, or show its state with `provision status`.

    `provision KEY` registers the device with the cloud using a provisioning key;
    `provision status` shows whether the device is provisioned.
    """
    # One command rather than a group: a group cannot take both `status` and a free KEY.
    if key == "status":
        _status(json_output)
        return
    body = {
        "provisioningKey": key,
        "apiEndpoint": api,
        "deviceName": name,
        "deviceType": device_type,
    }
    _call("/v1/provision", {k: v for k, v in body.items() if v is not None})
    from ..output import message

    message("device provisioned")


def deprovision() -> None:
    """Remove the cloud registration; the device keeps its UUID."""
    _call("/v1/deprovision", None)
    from ..output import message

    message("device deprovisioned")


def _call(path: str, body: object) -> None:
    from ..client import connect
    from ..errors import ApiError, CliError

    with connect() as api:
        try:
            api.post(path, body)
        except ApiError as exc:
            if exc.status in _MISSING_ROUTE:
                raise CliError(NOT_AVAILABLE) from None
            raise


def _status(json_output: bool) -> None:
    from ..client import connect
    from ..errors import ApiError, CliError
    from ..formatting import provision_pairs
    from ..output import print_json, print_pairs

    with connect() as api:
        try:
            device = api.get("/v1/device")
        except ApiError as exc:
            if exc.status in _MISSING_ROUTE:
                raise CliError(NOT_AVAILABLE) from None
            raise
    if json_output:
        keys = ("uuid", "provisioned", "provisioningState", "cloud")
        print_json({k: device.get(k) for k in keys})
    else:
        print_pairs(provision_pairs(device))

"""Provisioning with the cloud: provision with a key, show the state, deprovision.

An agent older than the provisioning routes answers them with 404: say so plainly instead of
failing with a bare "not found"."""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer

from .options import JsonFlag

NOT_AVAILABLE = "provisioning is not available in this agent version yet"
_MISSING_ROUTE = frozenset({404, 405})
_FROM_STDIN = "-"


def provision(
    key: Annotated[
        str,
        typer.Argument(
            help="Provisioning key ('-' reads it from stdin, keeping it out of the process "
            "list), or 'status'.",
            metavar="KEY|-|status",
        ),
    ],
    api: Annotated[str | None, typer.Option("--api", help="Cloud API endpoint.")] = None,
    name: Annotated[str | None, typer.Option("--name", help="Device name.")] = None,
    device_type: Annotated[str | None, typer.Option("--type", help="Device type.")] = None,
    json_output: JsonFlag = False,
) -> None:
    """Provision the device with the cloud, or show its state with `provision status`.

    `provision KEY` registers the device with the cloud using a provisioning key (the cloud
    endpoint comes from --api or the agent's CLOUD_API_ENDPOINT); `provision status` shows
    whether the device is provisioned, and the last error of a failed attempt.
    """
    # One command rather than a group: a group cannot take both `status` and a free KEY.
    if key == "status":
        _status(json_output)
        return
    if key == _FROM_STDIN:
        key = sys.stdin.readline().strip()
    body = {
        "provisioningApiKey": key,
        "apiEndpoint": api,
        "deviceName": name,
        "deviceType": device_type,
    }
    state = _request("POST", "/v1/provision", {k: v for k, v in body.items() if v is not None})
    _report(
        state, json_output, "device {uuid} provisioned with {apiEndpoint} (device id {deviceId})"
    )


def deprovision(json_output: JsonFlag = False) -> None:
    """Remove the device's registration from the cloud; it keeps its UUID and API key."""
    state = _request("POST", "/v1/deprovision", None)
    _report(state, json_output, "device {uuid} deprovisioned; it keeps its UUID and API key")


def _status(json_output: bool) -> None:
    state = _request("GET", "/v1/provision", None)
    if json_output:
        from ..output import print_json

        print_json(state)
        return
    from ..formatting import provision_pairs
    from ..output import print_pairs

    print_pairs(provision_pairs(state))


def _report(state: Any, json_output: bool, template: str) -> None:
    from ..output import message, print_json

    if json_output:
        print_json(state)
        return
    fields = state if isinstance(state, dict) else {}
    message(
        template.format_map({k: fields.get(k) or "-" for k in ("uuid", "apiEndpoint", "deviceId")})
    )


def _request(method: str, path: str, body: object) -> Any:
    from ..client import connect
    from ..errors import ApiError, CliError

    with connect() as api:
        try:
            return api.get(path) if method == "GET" else api.post(path, body)
        except ApiError as exc:
            if exc.status in _MISSING_ROUTE:
                raise CliError(NOT_AVAILABLE) from None
            raise

"""`iotctl anomalies`: recent detections from the agent's anomaly detection."""

from __future__ import annotations

from typing import Annotated

import typer

from .options import JsonFlag

COLUMNS = ["TIME", "SOURCE", "METRIC", "VALUE", "EXPECTED", "METHOD", "SEVERITY"]


def anomalies(
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, max=1000, help="How many.")] = 20,
    severity: Annotated[
        str | None, typer.Option(help="Only info, warning or critical.", show_default=False)
    ] = None,
    json_output: JsonFlag = False,
) -> None:
    """Recent anomalies, newest first."""
    from datetime import UTC, datetime

    from ..client import connect
    from ..output import print_json, print_table

    query = f"/v1/anomalies?limit={limit}" + (f"&severity={severity}" if severity else "")
    with connect() as api:
        result = api.get(query)
    if json_output:
        print_json(result)
        return
    rows = [
        [
            datetime.fromtimestamp(a["timestamp"] / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            a["source"],
            a["metric"],
            f"{a['value']:.4g}",
            "-" if a.get("expected") is None else f"{a['expected']:.4g}",
            a["method"],
            a["severity"],
        ]
        for a in result.get("anomalies") or []
    ]
    print_table(COLUMNS, rows, status_column="SEVERITY")

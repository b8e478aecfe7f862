"""`iotctl simulation`: list, start and stop the agent's simulation scenarios."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from .options import JsonFlag

app = typer.Typer(
    help="Simulated sensors and faults, for testing without hardware.", no_args_is_help=True
)

Scenario = Annotated[
    str,
    typer.Argument(help="sensor_data, anomaly_injection or memory_leak.", metavar="SCENARIO"),
]
COLUMNS = ["SCENARIO", "RUNNING", "AT START", "PROGRESS"]


def _progress(row: dict[str, Any]) -> str:
    if "published" in row:
        return f"{row['published']} readings"
    if "injected" in row:
        return f"{row['injected']} anomalies"
    if "leakedMb" in row:
        return f"{row['leakedMb']} MB held"
    return "-"


@app.command("list")
def list_(json_output: JsonFlag = False) -> None:
    """Every scenario, whether it runs, and what it has done."""
    from ..client import connect
    from ..output import print_json, print_table

    with connect() as api:
        result = api.get("/v1/simulation")
    if json_output:
        print_json(result)
        return
    rows = [
        [r["name"], "yes" if r["running"] else "no", "yes" if r["enabledAtStart"] else "no",
         _progress(r)]
        for r in result.get("scenarios") or []
    ]  # fmt: skip
    print_table(COLUMNS, rows, status_column="RUNNING")


def _switch(scenario: str, verb: str, json_output: bool) -> None:
    from ..client import connect, path_segment
    from ..output import message, print_json

    with connect() as api:
        result = api.post(f"/v1/simulation/{path_segment(scenario)}/{verb}")
    if json_output:
        print_json(result)
    elif result.get("changed"):
        message(f"{scenario} {'started' if verb == 'start' else 'stopped'}")
    else:
        message(f"{scenario} was already {'running' if verb == 'start' else 'stopped'}")


@app.command("start")
def start(scenario: Scenario, json_output: JsonFlag = False) -> None:
    """Start a scenario with its SIMULATION_CONFIG settings (its data is labelled simulated)."""
    _switch(scenario, "start", json_output)


@app.command("stop")
def stop(scenario: Scenario, json_output: JsonFlag = False) -> None:
    """Stop a scenario (a memory leak's memory is freed)."""
    _switch(scenario, "stop", json_output)

"""`iotctl logs`: the agent's own log, and the printer shared with `services logs`."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from typing import Annotated, Any

import typer

LinesOption = Annotated[
    int, typer.Option("--lines", "-n", min=0, help="How many recent lines to show first.")
]
FollowFlag = Annotated[
    bool, typer.Option("--follow", "-f", help="Keep printing new lines until Ctrl-C.")
]


def print_log_stream(open_stream: Callable[[], Iterator[dict[str, Any]]]) -> None:
    """Print each record as it arrives. Ctrl-C is the normal way to end a followed log, so
    it ends the command quietly with exit 0, as does a reader that went away (`| head`)."""
    from ..formatting import format_log_line
    from ..output import silence_stdout

    try:
        for record in open_stream():
            sys.stdout.write(format_log_line(record) + "\n")
            sys.stdout.flush()
    except KeyboardInterrupt:
        pass
    except BrokenPipeError:
        silence_stdout()


def logs(lines: LinesOption = 100, follow: FollowFlag = False) -> None:
    """Show the agent's recent log lines; with --follow, keep streaming new ones."""
    from ..client import connect

    params = {"n": lines, "follow": "true" if follow else "false"}
    with connect() as api:
        print_log_stream(lambda: api.stream_ndjson("/v1/logs", params))

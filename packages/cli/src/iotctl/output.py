"""Writing results: JSON for programs, rich tables for people.

rich is imported inside the table helpers only, so `--json` and plain messages never pay for
it. Console settings: no markup or emoji interpretation (server text is printed verbatim) and
no colour unless stdout is a terminal (rich's own detection, which also honours NO_COLOR).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .formatting import Pairs, Row, status_style

if TYPE_CHECKING:
    from rich.console import Console, RenderableType

# Piped output is read by grep and awk: do not wrap rows at 80 columns.
_PIPE_WIDTH = 240


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2) + "\n")


def message(text: str) -> None:
    sys.stdout.write(text + "\n")


def silence_stdout() -> None:
    """After the reader of a pipe went away (`| head`), point stdout at /dev/null so that the
    interpreter's final flush does not fail with a second BrokenPipeError."""
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def _console() -> Console:
    from rich.console import Console

    console = Console(markup=False, emoji=False, highlight=False)
    if not console.is_terminal:
        console.width = _PIPE_WIDTH
    return console


def _render(*renderables: RenderableType) -> None:
    console = _console()
    if console.is_terminal:
        console.print(*renderables)
        return
    # rich pads every cell to its column's width; a pipe gets lines without trailing blanks.
    with console.capture() as captured:
        console.print(*renderables)
    sys.stdout.write("".join(line.rstrip() + "\n" for line in captured.get().splitlines()))


def print_table(columns: Sequence[str], rows: Sequence[Row], status_column: str = "STATUS") -> None:
    from rich.table import Table
    from rich.text import Text

    table = Table(box=None, pad_edge=False, header_style="bold", show_edge=False)
    for column in columns:
        table.add_column(column, overflow="fold")
    status_at = columns.index(status_column) if status_column in columns else -1
    for row in rows:
        cells = [Text(cell) for cell in row]
        if status_at >= 0:
            cells[status_at].stylize(status_style(row[status_at].split(" ")[0]))
        table.add_row(*cells)
    _render(table)


def print_pairs(pairs: Pairs, title: str | None = None) -> None:
    """Key/value lines aligned in two columns."""
    from rich.table import Table
    from rich.text import Text

    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(overflow="fold")
    for key, value in pairs:
        cell = Text(value)
        if key == "Status":
            cell.stylize(status_style(value.split(" ")[0]))
        grid.add_row(Text(key), cell)
    _render(*([Text(title, style="bold")] if title else []), grid)

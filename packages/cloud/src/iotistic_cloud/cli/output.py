"""Plain-text tables and JSON for the CLI (stdout only: errors go to stderr)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import typer
from pydantic import BaseModel


def print_json(value: BaseModel | Sequence[BaseModel]) -> None:
    data: Any = (
        value.model_dump(mode="json")
        if isinstance(value, BaseModel)
        else [item.model_dump(mode="json") for item in value]
    )
    typer.echo(json.dumps(data, indent=2))


def print_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    cells = [[_cell(value) for value in row] for row in rows]
    widths = [len(header) for header in headers]
    for row in cells:
        widths = [max(width, len(cell)) for width, cell in zip(widths, row, strict=True)]
    for row in [list(headers), *cells]:
        line = "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        typer.echo(line.rstrip())


def print_fields(fields: Sequence[tuple[str, object]]) -> None:
    width = max(len(name) for name, _ in fields) + 1
    for name, value in fields:
        typer.echo(f"{(name + ':').ljust(width)} {_cell(value)}")


def _cell(value: object) -> str:
    return "-" if value is None else str(value)

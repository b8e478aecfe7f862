"""Options shared by several commands."""

from __future__ import annotations

from typing import Annotated

import typer

JsonFlag = Annotated[
    bool, typer.Option("--json", help="Print machine-readable JSON on stdout instead of a table.")
]
YesFlag = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]


def confirm_or_abort(question: str, yes: bool) -> None:
    """Ask on stderr (stdout may be a pipe); anything but yes leaves everything as it was."""
    from ..errors import CliError

    if yes:
        return
    if not typer.confirm(question, default=False, err=True):
        raise CliError("aborted: nothing was changed")

"""Expected failures of a command: one line on stderr and a non-zero exit, no traceback."""

from __future__ import annotations

from typing import Final

EXIT_FAILED: Final = 1
EXIT_USAGE: Final = 2


class CliError(Exception):
    def __init__(self, message: str, exit_code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code

"""Size limits shared by the API and the CLI."""

from __future__ import annotations

from typing import Final

# Every request body, and a target file given to the CLI.
MAX_BODY_BYTES: Final = 1024 * 1024

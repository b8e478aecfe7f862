"""Failures the CLI reports as `error: <message>` on stderr, and how HTTP answers map to them.

No third-party imports here: the mapping is pure so that it can be tested without a server,
and importing it costs nothing on the start-up path.
"""

from __future__ import annotations

import json

EXIT_FAILURE = 1
EXIT_USAGE = 2

KEY_REFUSED = "the device API key was refused"


class CliError(Exception):
    """A failure to show to people: the message is printed as is, the process exits."""

    def __init__(self, message: str, exit_code: int = EXIT_FAILURE) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


class ApiError(CliError):
    """The agent answered with an error status; `code` is its `error` field."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


def unreachable(url: str) -> CliError:
    return CliError(f"cannot reach the agent at {url}: is it running?")


def error_from_response(status: int, body: bytes) -> ApiError:
    """Turn an error answer into an ApiError, trusting the documented JSON shape
    `{"error", "message"}` but surviving anything else (a proxy page, an old agent)."""
    if status == 401:
        return ApiError(status, "unauthorized", KEY_REFUSED)
    code, message = f"http_{status}", ""
    try:
        payload = json.loads(body)
    except ValueError:
        payload = None
    if isinstance(payload, dict):
        code = str(payload.get("error") or code)
        message = str(payload.get("message") or "")
    if not message:
        text = body.decode("utf-8", "replace").strip()
        message = f"the agent answered HTTP {status}" + (f": {text[:200]}" if text else "")
    return ApiError(status, code, message)

"""Provisioning failures that are not the cloud's (those are `http.CloudError`)."""

from __future__ import annotations

from typing import Final

from pydantic import ValidationError

MAX_PROBLEMS: Final = 5


class ProvisioningError(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidProvisioningRequest(ProvisioningError):
    """The caller's input cannot work (bad key length, no endpoint, bad name): a 400."""


class ProvisioningConflict(ProvisioningError):
    """Already provisioned, not provisioned, or another provisioning is running: a 409."""


def describe_invalid(exc: ValidationError) -> str:
    """Field paths and pydantic's messages only: the input may hold secrets."""
    problems = [
        f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}"
        for e in exc.errors(include_url=False, include_input=False)[:MAX_PROBLEMS]
    ]
    return "; ".join(problems)

"""Raise validation errors at a precise location from a model-level validator.

A ``ValueError`` raised in a model validator is reported at the model itself; raising a
``ValidationError`` instead lets pydantic prefix our relative location with the model's own
path, so the message points at e.g. ``services[1].config.depends_on[0]``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pydantic import ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError

Loc = tuple[str | int, ...]


@dataclass(frozen=True)
class Problem:
    loc: Loc
    message: str
    value: object


def raise_problems(title: str, problems: Sequence[Problem]) -> None:
    """Raise one ``ValidationError`` holding every problem, or return if there is none."""
    if not problems:
        return
    details: list[InitErrorDetails] = [
        {
            # The message goes through the context so braces in user values are not expanded.
            "type": PydanticCustomError("invalid_value", "{reason}", {"reason": problem.message}),
            "loc": problem.loc,
            "input": problem.value,
        }
        for problem in problems
    ]
    raise ValidationError.from_exception_data(title, details)

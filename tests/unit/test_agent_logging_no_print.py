"""The agent writes through its logger, never with print(): only main's "invalid settings"
line is allowed, since logging is configured from the very settings that failed."""

from __future__ import annotations

import ast
from pathlib import Path

SOURCE = Path(__file__).parents[2] / "packages" / "agent" / "src"
# (file relative to SOURCE, enclosing function): writes to a terminal before logging exists.
ALLOWED = {("iotistic_agent/agent.py", "main")}


def print_calls() -> list[tuple[str, str, int]]:
    found = []
    for path in sorted(SOURCE.rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        functions = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)]
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and getattr(node.func, "id", None) == "print"):
                continue
            enclosing = [
                f.name for f in functions if f.lineno <= node.lineno <= (f.end_lineno or f.lineno)
            ]
            found.append((path.relative_to(SOURCE).as_posix(), ",".join(enclosing), node.lineno))
    return found


def test_no_print_in_the_agent() -> None:
    calls = print_calls()
    assert calls, "the scan finds main's documented print"
    unexpected = [c for c in calls if (c[0], c[1]) not in ALLOWED]
    assert unexpected == []

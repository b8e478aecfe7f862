"""Cycle detection for the service dependency graph of one app."""

from __future__ import annotations

from collections.abc import Mapping, Sequence


def find_cycle(graph: Mapping[str, Sequence[str]]) -> list[str] | None:
    """Return one cycle as ``[a, b, ..., a]`` or ``None``; edges to unknown nodes are ignored.

    Iterative depth-first search, so a long dependency chain cannot hit the recursion limit.
    """
    done: set[str] = set()
    for root in sorted(graph):
        if root in done:
            continue
        path: list[str] = [root]
        on_path: set[str] = {root}
        pending: list[list[str]] = [sorted(set(graph[root]))]
        while path:
            if not pending[-1]:
                node = path.pop()
                on_path.discard(node)
                done.add(node)
                pending.pop()
                continue
            nxt = pending[-1].pop(0)
            if nxt in on_path:
                return [*path[path.index(nxt) :], nxt]
            if nxt in done or nxt not in graph:
                continue
            path.append(nxt)
            on_path.add(nxt)
            pending.append(sorted(set(graph[nxt])))
    return None

"""Removing a container deletes its log. Before the agent removes one (a reconciliation
pass, `iotctl apps restart` or `purge`), the follower of its log, while log shipping runs,
reads it to the end: the reconciler and the operator actions call this, log shipping attaches
its reader to it for as long as it runs."""

from __future__ import annotations

from ..engine.protocol import BeforeRemove


class ReadBeforeRemove:
    def __init__(self) -> None:
        self._reader: BeforeRemove | None = None

    def attach(self, reader: BeforeRemove) -> None:
        self._reader = reader

    def detach(self, reader: BeforeRemove) -> None:
        if self._reader == reader:  # a later run may have attached its own meanwhile
            self._reader = None

    async def __call__(self, container_id: str) -> None:
        reader = self._reader
        if reader is not None:
            await reader(container_id)

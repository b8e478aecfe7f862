"""The engine's state as the Device API shows it: recent, and shared by every request.

A snapshot costs the engine one list plus one inspect per container, and the agent the
parsing of all of it: asked for by every request, 100 polling clients kept the engine busy
enough to slow an update 2.6-fold (issue 12, item 8). Routes therefore read a snapshot at
most `max_age_s` old: the reconciler's latest, or one this view takes once for all the
requests of that moment (`Recent`: single flight, renewed in the background after
`REFRESH_AFTER_S` while requests keep coming, so that they seldom wait for the engine).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

from ..engine.protocol import Engine
from ..orchestrator.model import EngineSnapshot
from .recent import Recent

# Fresh enough for people and `iotctl`; under load a renewal has 1.5 s to finish before
# requests have to wait for it.
DEFAULT_MAX_AGE_S = 2.0
REFRESH_AFTER_S = 0.5


class LatestSnapshot(Protocol):
    """What the reconciler publishes: its last snapshot and when it asked for it."""

    @property
    def last_snapshot(self) -> EngineSnapshot | None: ...

    @property
    def last_snapshot_at(self) -> float | None: ...


class EngineView:
    def __init__(
        self,
        engine: Engine,
        latest: LatestSnapshot,
        max_age_s: float = DEFAULT_MAX_AGE_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._latest = latest
        self._recent = Recent(
            engine.snapshot,
            max_age_s,
            refresh_after_s=min(REFRESH_AFTER_S, max_age_s),
            clock=clock,
            name="device-api-snapshot",
        )

    async def snapshot(self) -> EngineSnapshot:
        """A snapshot asked for at most `max_age_s` ago. Raises what the engine raises
        (EngineUnavailable, EngineError) to every request that waited for it."""
        snapshot, taken_at = self._latest.last_snapshot, self._latest.last_snapshot_at
        if snapshot is not None and taken_at is not None:
            self._recent.offer(taken_at, snapshot)
        return await self._recent.get()

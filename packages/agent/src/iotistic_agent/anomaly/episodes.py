"""Alert de-duplication per series: one alert per anomalous episode, plus a time cool-down.

A level shift or an outage keeps a series abnormal for many points in a row (a sliding
median needs half a window to follow a new level); every one of those points is a finding,
but the operator needs one alert for the event, and another only if it gets worse. An
episode opens with an alert and closes after ``QUIET_POINTS`` points in a row without any
finding. The time cool-down still applies across episodes, for fast-sampled sensors; a
cool-down of 0 turns de-duplication off altogether (every finding is an alert).
"""

from __future__ import annotations

from typing import Final

QUIET_POINTS: Final = 5


class AlertEpisode:
    __slots__ = ("_last_rank", "_last_ts", "_open_rank", "_quiet")

    def __init__(self) -> None:
        self._last_ts = 0
        self._last_rank = -1
        self._open_rank = -1  # -1: no episode open
        self._quiet = 0

    def admit(self, ts: int, rank: int, cooldown_ms: int) -> bool:
        """A finding of severity ``rank`` at ``ts``: True if it is a new alert."""
        self._quiet = 0
        if cooldown_ms <= 0:
            return True
        if rank <= self._open_rank:
            return False
        if rank <= self._last_rank and 0 <= ts - self._last_ts < cooldown_ms:
            return False
        self._open_rank = max(self._open_rank, rank)
        self._last_ts = ts
        self._last_rank = rank
        return True

    def calm(self) -> None:
        """A point without any finding."""
        if self._open_rank < 0:
            return
        self._quiet += 1
        if self._quiet >= QUIET_POINTS:
            self._open_rank = -1
            self._quiet = 0

"""Trouble that lasts (a database outage, an overload) is logged as an episode: one warning
when it starts, one line when it is over with how long it lasted and how many requests it
refused, and nothing in between, however many requests it touches."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable


class EpisodeLog:
    """``failed`` for every refused request, ``succeeded`` whenever things work. ``started``
    is formatted with ``reason``; ``ended`` with ``seconds`` and ``refused``. An episode
    ends at the first success at least ``quiet_s`` after its last failure (0: the first)."""

    def __init__(
        self,
        logger: logging.Logger,
        started: str,
        ended: str,
        *,
        quiet_s: float = 0.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._log = logger
        self._started = started
        self._ended = ended
        self._quiet_s = quiet_s
        self._monotonic = monotonic
        self._since: float | None = None
        self._last_failure = 0.0
        self._refused = 0

    @property
    def down(self) -> bool:
        return self._since is not None

    def failed(self, reason: str) -> None:
        now = self._monotonic()
        self._refused += 1
        self._last_failure = now
        if self._since is None:
            self._since = now
            self._log.warning(self._started.format(reason=reason))

    def succeeded(self) -> None:
        if self._since is None:
            return
        now = self._monotonic()
        if now - self._last_failure < self._quiet_s:
            return
        self._log.warning(self._ended.format(seconds=now - self._since, refused=self._refused))
        self._since = None
        self._refused = 0

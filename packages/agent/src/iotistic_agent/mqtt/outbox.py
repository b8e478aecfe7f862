"""Messages published while the broker is away: bounded, oldest dropped first (pure)."""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass

log = logging.getLogger("iotistic.mqtt")

DEFAULT_MAX_MESSAGES = 1000
WARN_EVERY = 100  # one warning for the first drop of an outage, then one per 100


@dataclass(frozen=True)
class Outgoing:
    topic: str
    payload: bytes
    qos: int


class Outbox:
    """In memory only: it does not survive a restart (state reports have their own on-disk
    queue in the cloud sync; this one holds the rest, e.g. sensor data)."""

    def __init__(self, max_messages: int = DEFAULT_MAX_MESSAGES) -> None:
        if max_messages < 1:
            raise ValueError("the outbox must hold at least one message")
        self.max_messages = max_messages
        self._messages: deque[Outgoing] = deque()
        self.dropped = 0
        self._dropped_this_outage = 0

    def __len__(self) -> int:
        return len(self._messages)

    def append(self, message: Outgoing) -> None:
        if len(self._messages) >= self.max_messages:
            self._messages.popleft()
            self.dropped += 1
            self._dropped_this_outage += 1
            if self._dropped_this_outage % WARN_EVERY == 1:
                log.warning(
                    "MQTT outbox full (%d messages): dropped the oldest (%d so far)",
                    self.max_messages,
                    self._dropped_this_outage,
                )
        self._messages.append(message)

    def peek(self) -> Outgoing | None:
        return self._messages[0] if self._messages else None

    def pop(self) -> None:
        self._messages.popleft()
        if not self._messages:
            self._dropped_this_outage = 0

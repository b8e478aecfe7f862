"""Cloud sync's intervals: light, so the agent can build them before (or without) sync."""

from __future__ import annotations

from dataclasses import dataclass, field

from .retry import RetryPolicy


@dataclass(frozen=True)
class SyncTiming:
    poll_interval_s: float = 60.0
    report_interval_s: float = 10.0
    full_report_every_s: float = 300.0
    policy: RetryPolicy = field(default_factory=RetryPolicy)

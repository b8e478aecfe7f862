"""Failure bookkeeping with Kubernetes-style exponential backoff (pure functions)."""

from __future__ import annotations

from ..backoff import Backoff
from .model import FailureReason, FailureRecord

BASE_DELAY_S = 10.0
MAX_DELAY_S = 300.0
MAX_FAILURES = 10
# A container that stays up this long after a crash is considered healthy again.
STABLE_AFTER_S = 60.0
# No jitter: the planner and this bookkeeping stay pure functions of their inputs.
CRASH_BACKOFF = Backoff(base_s=BASE_DELAY_S, max_s=MAX_DELAY_S, jitter=0.0)


def backoff_delay(failures: int) -> float:
    """10 s, 20 s, 40 s, 80 s, 160 s, then 300 s for every later failure."""
    return CRASH_BACKOFF.delay(failures)


def record_failure(
    previous: FailureRecord | None,
    reason: FailureReason,
    message: str,
    now: float,
    config_hash: str,
    marker: str = "",
) -> FailureRecord:
    same_target = previous is not None and previous.config_hash == config_hash
    count = (previous.retry_count if same_target and previous else 0) + 1
    gave_up = count >= MAX_FAILURES
    return FailureRecord(
        reason=reason,
        message=message,
        retry_count=count,
        next_retry_at=now + backoff_delay(count),
        last_failure_at=now,
        config_hash=config_hash,
        gave_up=gave_up,
        marker=marker,
    )

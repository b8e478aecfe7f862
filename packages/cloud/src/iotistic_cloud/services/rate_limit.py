"""Rate limits per caller: a token bucket per key (a device's API key, a provisioning key).

``take`` is the bucket's arithmetic, a pure function of the bucket, the time and the rate;
``RateLimiter`` keeps one bucket per key in this process, the least recently used dropped
beyond ``max_keys`` (a dropped bucket starts full again: forgetting a caller can only let
it through, never block it). Several replicas each keep their own buckets, so a caller
spread over N replicas gets up to N times the rate (docs/cloud.md, Rate limits).
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from .errors import TooManyRequests

DEFAULT_MAX_KEYS: Final = 100_000
# The bucket holds this fraction of a minute's requests.
BURST_DIVISOR: Final = 6


@dataclass(frozen=True)
class Bucket:
    tokens: float
    at: float  # monotonic seconds of the last update


def take(bucket: Bucket | None, now: float, per_s: float, capacity: float) -> tuple[Bucket, float]:
    """Spend one token. Returns the bucket after it and 0.0, or, when no whole token is
    left, the bucket refilled to ``now`` and the seconds until one is (nothing spent).
    A new caller starts with a full bucket: ``capacity`` requests at once, then ``per_s``."""
    if bucket is None:
        tokens = capacity
    else:
        # max(0, ...): a clock that goes back refills nothing, and never drains the bucket.
        tokens = min(capacity, bucket.tokens + per_s * max(0.0, now - bucket.at))
    if tokens >= 1.0:
        return Bucket(tokens - 1.0, now), 0.0
    return Bucket(tokens, now), (1.0 - tokens) / per_s


class RateLimiter:
    """``per_min`` requests a minute per key on average, up to a sixth of that at once (the
    bucket holds ten seconds' worth: a burst, but not a minute's work in one go, which for
    key pairs would be seconds of CPU); 0 turns the limit off."""

    def __init__(
        self,
        per_min: int,
        what: str,
        *,
        max_keys: int = DEFAULT_MAX_KEYS,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.per_min = per_min
        self._per_s = per_min / 60.0
        self._capacity = float(max(1, per_min // BURST_DIVISOR))
        self._what = what
        self._max_keys = max_keys
        self._monotonic = monotonic
        self._buckets: OrderedDict[str, Bucket] = OrderedDict()

    def check(self, key: str) -> None:
        """Count one request of ``key``; TooManyRequests (429) with Retry-After when the
        key has used its share."""
        if self.per_min == 0:
            return
        now = self._monotonic()
        bucket, wait_s = take(self._buckets.get(key), now, self._per_s, self._capacity)
        self._buckets[key] = bucket
        self._buckets.move_to_end(key)
        if len(self._buckets) > self._max_keys:
            self._buckets.popitem(last=False)
        if wait_s > 0:
            raise TooManyRequests(
                f"too many requests for this {self._what} (at most {self.per_min} a minute); "
                "try again later",
                retry_after_s=max(1, math.ceil(wait_s)),
            )

"""Load shedding: past MAX_CONCURRENT_REQUESTS requests in progress, a new one is answered
503 with Retry-After at once, before any work is spent on it.

Without it an overloaded process queues every request (5,000 simulated devices on one
process waited 111 s at the median): the answers come too late to be of use, and the
clients' own timeouts make them send everything again. Refusing early keeps the requests
that are admitted fast, and Retry-After (spread over [N, 2N] seconds so refused devices do
not come back all at once) tells devices when to come back. ``/health`` and the admin API
are never refused: load balancers and operators must get through an overload.
"""

from __future__ import annotations

import logging
import random
from typing import Final

from starlette.types import ASGIApp, Receive, Scope, Send

from ..episodes import EpisodeLog
from .raw_answers import send_error

log = logging.getLogger("iotistic.cloud.load")

EXEMPT_PREFIXES: Final = ("/health", "/openapi.json", "/api/admin/")
OVERLOADED: Final = "the cloud is overloaded; try again later"
# An overload is over once nothing was refused for this long (no line per short dip).
QUIET_S: Final = 10.0


def retry_after(base_s: int, draw: float) -> int:
    """Retry-After for a refused request: ``base_s`` to ``2 * base_s``, by ``draw`` in [0, 1)."""
    return base_s + int(draw * (base_s + 1))


class AdmissionMiddleware:
    def __init__(self, app: ASGIApp, max_in_flight: int, retry_after_s: int) -> None:
        self.app = app
        self.max_in_flight = max_in_flight
        self.retry_after_s = retry_after_s
        self.in_flight = 0
        self.episodes = EpisodeLog(
            log,
            "overloaded ({reason}): answering 503 with Retry-After until the load falls",
            "no longer overloaded after {seconds:.1f} s ({refused} requests answered 503)",
            quiet_s=QUIET_S,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or self.max_in_flight == 0
            or scope["path"].startswith(EXEMPT_PREFIXES)
        ):
            await self.app(scope, receive, send)
            return
        if self.in_flight >= self.max_in_flight:
            self.episodes.failed(f"{self.in_flight} requests in progress")
            seconds = retry_after(self.retry_after_s, random.random())
            await send_error(send, 503, OVERLOADED, [(b"retry-after", str(seconds).encode())])
            return
        self.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1
            self.episodes.succeeded()

"""RSA key pairs for key exchanges, made one at a time off the event loop, with a bounded
queue: each costs tens of milliseconds of CPU, so however many arrive at once (a rollout,
or an attacker with a leaked provisioning key) they take at most one core, and past the
queue the cloud answers 503 with Retry-After instead of piling work up.
"""

from __future__ import annotations

import asyncio
from typing import Final

from cryptography.hazmat.primitives.asymmetric import rsa
from iotistic_contracts.sealed import generate_private_key

from .errors import Unavailable

# Generations running at once: OpenSSL releases the GIL, so one thread uses one core.
CONCURRENT: Final = 1
# Requests waiting for their turn beyond the running ones; more are refused (503).
MAX_WAITING: Final = 16
BUSY_RETRY_AFTER_S: Final = 2


class KeyPairFactory:
    def __init__(self, concurrent: int = CONCURRENT, max_waiting: int = MAX_WAITING) -> None:
        self._turns = asyncio.Semaphore(concurrent)
        self._limit = concurrent + max_waiting
        self._queued = 0

    async def new_private_key(self) -> rsa.RSAPrivateKey:
        if self._queued >= self._limit:
            raise Unavailable(
                "the cloud is busy making key pairs for key exchanges; try again later",
                retry_after_s=BUSY_RETRY_AFTER_S,
            )
        self._queued += 1
        try:
            async with self._turns:
                key = await asyncio.to_thread(generate_private_key)
        finally:
            self._queued -= 1
        return key

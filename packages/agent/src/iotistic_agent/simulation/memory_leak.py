"""A simulated memory leak: real allocations, growing by ``leakRateMb`` per interval up to a
cap, released at once when the scenario stops (for testing memory monitoring and alerts)."""

from __future__ import annotations

from .config import MemoryLeakScenario

MB = 1024 * 1024


class MemoryLeak:
    def __init__(self, scenario: MemoryLeakScenario) -> None:
        self._scenario = scenario
        self._blocks: list[bytearray] = []

    @property
    def leaked_mb(self) -> float:
        return sum(len(b) for b in self._blocks) / MB

    def step(self) -> float:
        """Leak one interval's worth (never beyond the cap); returns the total in MB."""
        room = self._scenario.maxMb - self.leaked_mb
        size = int(min(self._scenario.leakRateMb, room) * MB)
        if size > 0:
            # Touched page by page, so that the memory is really resident, not just reserved.
            block = bytearray(size)
            block[::4096] = b"\x01" * len(range(0, size, 4096))
            self._blocks.append(block)
        return self.leaked_mb

    def release(self) -> None:
        self._blocks.clear()

"""Many simulated devices on one cloud process: queueing before, shedding after (issue 12,
item 14).

Run (after scripts/bootstrap.sh; see bench/README.md for making the "before" release):
    .venv/bin/python bench/bench_cloud_overload.py [--before <dir>/.venv/bin/iotistic-cloud]
        [--devices 2000] [--keys 250] [--seconds 15] [--speedup 3]

The real `iotistic-cloud serve` (SQLite) is pinned to CPU 0, this load generator to CPU 1.
Each simulated device does what an agent does, --speedup times faster: a state report
every 10 s and a poll every 60 s, one request at a time, and after a 503 or 429 it waits
Retry-After (also --speedup times shorter) before its next request. The devices share
--keys registered identities round-robin (registering thousands would take minutes of key
generation; 8 devices at 3x share a key's 300 requests a minute with room to spare), and
one more "greedy" device with a key of its own sends as fast as it can. Two phases per
release:
- light: a tenth of the devices (below capacity): the baseline;
- overload: all of them (about 2x what one core serves).
Reported per phase: requests answered per second, p50/p99 of the successful ones, the share
and latency of 503s (how early the cloud sheds), the devices that got at least one report
through and the longest a device went without one, the greedy device's rate and 429s, and
the cloud's RSS.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import cloud_releases  # noqa: E402
from bench.cloud_releases import rss_mb  # noqa: E402
from tests.cloud.device_kit import SimDevice, provision  # noqa: E402
from tests.support.cloud_process import CloudProcess  # noqa: E402

REPORT_S, POLL_S = 10.0, 60.0
REQUEST_TIMEOUT_S = 300.0
# The defaults, but for provisioning the simulated fleet's identities in one go.
ENV = {"PROVISIONING_RATE_LIMIT_PER_MIN": "0", "DEVICE_RATE_LIMIT_PER_MIN": "300"}


@dataclass
class Stats:
    ok_ms: list[float] = field(default_factory=list)
    shed_ms: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    last_report: dict[int, float] = field(default_factory=dict)
    longest_gap: dict[int, float] = field(default_factory=dict)
    greedy: Counter[int] = field(default_factory=Counter)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


class Fleet:
    def __init__(self, cloud: CloudProcess, devices: list[SimDevice], speedup: float) -> None:
        self.url = cloud.url
        self.devices = devices
        self.speedup = speedup
        self.sequences = [0] * len(devices)
        self.etags: dict[str, str] = {}

    def report_body(self, slot: int) -> tuple[SimDevice, dict[str, object]]:
        self.sequences[slot] += 1
        device = self.devices[slot]
        body = {
            "sequence": self.sequences[slot],
            "reportedAt": "2026-12-08T12:00:00Z",
            "uptime": self.sequences[slot],
            "cpu_usage": 12.5,
            "memory_usage": 512,
        }
        return device, {device.uuid: body}

    async def device(
        self, index: int, session: aiohttp.ClientSession, stats: Stats, stop: asyncio.Event
    ) -> None:
        """One simulated agent: reports and polls one at a time, honouring Retry-After."""
        interval = 1 / (1 / REPORT_S + 1 / POLL_S) / self.speedup
        slot = index % len(self.devices)
        start = time.perf_counter()
        stats.last_report[index] = start
        await asyncio.sleep(random.uniform(0, interval))
        while not stop.is_set():
            is_poll = random.random() < REPORT_S / (REPORT_S + POLL_S)
            started = time.perf_counter()
            status, retry_after = await self.request(session, slot, is_poll)
            done = time.perf_counter()
            stats.statuses[status] += 1
            if status < 400:
                stats.ok_ms.append((done - started) * 1000)
                if not is_poll:
                    gap = done - stats.last_report[index]
                    stats.longest_gap[index] = max(stats.longest_gap.get(index, 0.0), gap)
                    stats.last_report[index] = done
            elif status == 503:
                stats.shed_ms.append((done - started) * 1000)
            wait = interval if retry_after is None else max(interval, retry_after / self.speedup)
            await asyncio.sleep(wait)

    async def request(
        self, session: aiohttp.ClientSession, slot: int, is_poll: bool
    ) -> tuple[int, float | None]:
        device = self.devices[slot]
        try:
            if is_poll:
                headers = {**device.auth, "If-None-Match": self.etags.get(device.uuid, "")}
                response = await session.get(f"{self.url}{device.state_path}", headers=headers)
            else:
                device, body = self.report_body(slot)
                response = await session.patch(
                    f"{self.url}/api/v1/device/state", json=body, headers=device.auth
                )
            async with response:
                await response.read()
                if response.status == 200 and is_poll:
                    self.etags[device.uuid] = response.headers.get("ETag", "")
                retry = response.headers.get("Retry-After")
                return response.status, None if retry is None else float(retry)
        except (TimeoutError, aiohttp.ClientError):
            return 599, None  # no answer in REQUEST_TIMEOUT_S, or the connection failed

    async def greedy(
        self, device: SimDevice, session: aiohttp.ClientSession, stats: Stats, stop: asyncio.Event
    ) -> None:
        """A device that ignores every interval and Retry-After."""
        while not stop.is_set():
            async with session.get(f"{self.url}{device.state_path}", headers=device.auth) as r:
                await r.read()
                stats.greedy[r.status] += 1


async def run_phase(
    fleet: Fleet, greedy: SimDevice, count: int, seconds: float
) -> tuple[Stats, float]:
    stats, stop = Stats(), asyncio.Event()
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        tasks = [asyncio.create_task(fleet.device(i, session, stats, stop)) for i in range(count)]
        tasks.append(asyncio.create_task(fleet.greedy(greedy, session, stats, stop)))
        started = time.perf_counter()
        await asyncio.sleep(seconds)
        elapsed = time.perf_counter() - started
        stop.set()
        # Requests still queued in the cloud are not waited for: their answers are too late.
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    now = time.perf_counter()
    for index, last in stats.last_report.items():
        stats.longest_gap[index] = max(stats.longest_gap.get(index, 0.0), now - last)
    return stats, elapsed


def summary(name: str, count: int, stats: Stats, seconds: float, speedup: float) -> list[str]:
    answered = sum(stats.statuses.values())
    shed = stats.statuses[503]
    through = sum(1 for gap in stats.longest_gap.values() if gap < seconds)
    gaps = sorted(stats.longest_gap.values())
    greedy = sum(stats.greedy.values())
    return [
        f"{name}: {count} devices ({count * speedup:,.0f} at real intervals), "
        f"{answered / seconds:.0f} answers/s: {dict(sorted(stats.statuses.items()))}",
        f"  successful: {len(stats.ok_ms) / seconds:.0f}/s, p50 {pct(stats.ok_ms, 0.5):.0f} ms, "
        f"p99 {pct(stats.ok_ms, 0.99):.0f} ms",
        f"  503: {shed / max(answered, 1):.0%} of answers, p50 {pct(stats.shed_ms, 0.5):.1f} ms, "
        f"p99 {pct(stats.shed_ms, 0.99):.1f} ms",
        f"  devices with a report through: {through}/{count}; longest without one: p50 "
        f"{pct(gaps, 0.5):.1f} s, max {gaps[-1] if gaps else 0:.1f} s (phase {seconds:.0f} s)",
        f"  greedy device: {greedy / seconds:.0f} requests/s, "
        f"{stats.greedy[429] / max(greedy, 1):.0%} answered 429",
    ]


async def measure(cloud: CloudProcess, args: argparse.Namespace) -> list[str]:
    assert cloud.proc is not None
    async with httpx.AsyncClient(base_url=cloud.url, timeout=120) as client:
        key = cloud.cli("keys", "create", "--quiet").stdout.strip()
        devices = [await provision(client, key, name=f"sim-{i}") for i in range(args.keys)]
        greedy = await provision(client, key, name="greedy")
    fleet = Fleet(cloud, devices, args.speedup)
    lines = []
    for name, count in (("light", args.devices // 10), ("overload", args.devices)):
        stats, seconds = await run_phase(fleet, greedy, count, args.seconds)
        lines += summary(name, count, stats, seconds, args.speedup)
        rss, peak = rss_mb(cloud.proc.pid)
        lines.append(f"  cloud RSS {rss:.0f} MB (peak {peak:.0f} MB)")
        # Let the previous phase's queue drain before the next one starts.
        await asyncio.sleep(5)
    return lines


def main() -> None:
    parser = cloud_releases.parser(__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=2000)
    parser.add_argument("--keys", type=int, default=250)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--speedup", type=float, default=3.0)
    cloud_releases.run_releases(measure, parser.parse_args(), **ENV)


if __name__ == "__main__":
    main()

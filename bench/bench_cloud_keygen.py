"""Key-exchange replacement under attack with a leaked provisioning key (issue 12, item 13).

Run (after scripts/bootstrap.sh; see bench/README.md for making the "before" release):
    .venv/bin/python bench/bench_cloud_keygen.py [--before <dir>/.venv/bin/iotistic-cloud]
        [--seconds 8] [--clients 8] [--attackers 8]

The real `iotistic-cloud serve` (SQLite) is pinned to CPU 0, this load generator to CPU 1.
For each release (--before, then this checkout), three phases of --seconds each:
- legitimate load alone: --clients keep-alive clients polling a device's target (304);
- the attack alone: --attackers clients with a leaked provisioning key, each call a key
  exchange for the same uuid with the other of two device public keys, so that every call
  replaces the pending exchange (a fresh RSA-2048 key pair each, before the bound);
- both at once: the legitimate polls while attacked.
Reported: polls/s and p99 (and the ratio under attack to alone), attack requests/s by
status, the cloud's CPU per attack request (its utime+stime over the phase), key pairs
made (answers 200), and the cloud's RSS.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from iotistic_contracts.sealed import generate_private_key, public_key_pem  # noqa: E402

from bench import cloud_releases  # noqa: E402
from bench.cloud_releases import cpu_seconds, rss_mb  # noqa: E402
from tests.cloud.device_kit import KEY_EXCHANGE, SimDevice, new_uuid, provision  # noqa: E402
from tests.support.cloud_process import CloudProcess  # noqa: E402

WARMUP_S = 3.0  # also drains the attacker's burst allowance


@dataclass
class Phase:
    polls: list[float] = field(default_factory=list)  # latencies, ms
    attacks: Counter[int] = field(default_factory=Counter)
    seconds: float = 0.0
    cloud_cpu_s: float = 0.0

    def polls_per_s(self) -> float:
        return len(self.polls) / self.seconds

    def poll_p99(self) -> float:
        ordered = sorted(self.polls)
        return ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))] if ordered else 0.0


async def run_phase(
    cloud: CloudProcess,
    device: SimDevice | None,
    etag: str,
    attack_key: str | None,
    args: argparse.Namespace,
    public_keys: tuple[str, str],
) -> Phase:
    assert cloud.proc is not None
    phase = Phase()
    measuring = False
    stop = asyncio.Event()
    victim = new_uuid()

    async def poller() -> None:
        assert device is not None
        headers = {**device.auth, "If-None-Match": etag}
        url = f"{cloud.url}{device.state_path}"
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1)) as session:
            while not stop.is_set():
                started = time.perf_counter()
                async with session.get(url, headers=headers) as response:
                    await response.read()
                    assert response.status == 304, response.status
                if measuring:
                    phase.polls.append((time.perf_counter() - started) * 1000)

    async def attacker(index: int) -> None:
        url = f"{cloud.url}{KEY_EXCHANGE}"
        timeout = aiohttp.ClientTimeout(total=60)
        async with aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=1), timeout=timeout
        ) as session:
            n = index
            while not stop.is_set():
                n += 1
                body = {
                    "deviceUuid": victim,
                    "provisioningApiKey": attack_key,
                    "devicePublicKey": public_keys[n % 2],
                }
                async with session.post(url, json=body) as response:
                    await response.read()
                if measuring:
                    phase.attacks[response.status] += 1

    tasks = []
    if device is not None:
        tasks += [asyncio.create_task(poller()) for _ in range(args.clients)]
    if attack_key is not None:
        tasks += [asyncio.create_task(attacker(i)) for i in range(args.attackers)]
    await asyncio.sleep(WARMUP_S)
    cpu_before, started = cpu_seconds(cloud.proc.pid), time.perf_counter()
    measuring = True
    await asyncio.sleep(args.seconds)
    measuring = False
    phase.seconds = time.perf_counter() - started
    phase.cloud_cpu_s = cpu_seconds(cloud.proc.pid) - cpu_before
    stop.set()
    await asyncio.gather(*tasks)
    return phase


async def measure(cloud: CloudProcess, args: argparse.Namespace) -> list[str]:
    assert cloud.proc is not None
    public_keys = (public_key_pem(generate_private_key()), public_key_pem(generate_private_key()))
    leaked = cloud.cli("keys", "create", "--quiet").stdout.strip()
    own = cloud.cli("keys", "create", "--quiet").stdout.strip()
    async with httpx.AsyncClient(base_url=cloud.url, timeout=60) as client:
        device = await provision(client, own)
        etag = (await client.get(device.state_path, headers=device.auth)).headers["ETag"]
    alone = await run_phase(cloud, device, etag, None, args, public_keys)
    attack = await run_phase(cloud, None, etag, leaked, args, public_keys)
    both = await run_phase(cloud, device, etag, leaked, args, public_keys)
    rss, peak = rss_mb(cloud.proc.pid)
    attacks = sum(attack.attacks.values())
    statuses = ", ".join(
        f"{code}: {n / attack.seconds:.0f}/s" for code, n in sorted(attack.attacks.items())
    )
    return [
        f"polls alone: {alone.polls_per_s():.0f}/s, p50 {statistics.median(alone.polls):.1f} ms,"
        f" p99 {alone.poll_p99():.1f} ms",
        f"attack alone: {attacks / attack.seconds:.0f} requests/s ({statuses}); cloud CPU "
        f"{attack.cloud_cpu_s / max(attacks, 1) * 1000:.2f} ms per attack request, "
        f"{attack.cloud_cpu_s / attack.seconds * 100:.0f}% of its core; "
        f"{attack.attacks[200] / attack.seconds:.1f} key pairs/s",
        f"polls under attack: {both.polls_per_s():.0f}/s "
        f"({both.polls_per_s() / alone.polls_per_s():.2f}x alone), p99 {both.poll_p99():.1f} ms"
        f" ({both.poll_p99() / alone.poll_p99():.1f}x); attack meanwhile "
        f"{sum(both.attacks.values()) / both.seconds:.0f} requests/s",
        f"cloud RSS {rss:.0f} MB (peak {peak:.0f} MB)",
    ]


def main() -> None:
    parser = cloud_releases.parser(__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--attackers", type=int, default=8)
    # The provisioning limit at its default; the legitimate polls stand for a fleet's, so one
    # device's limit is not what is measured (the helper turns it off).
    cloud_releases.run_releases(
        measure, parser.parse_args(), PROVISIONING_RATE_LIMIT_PER_MIN="120"
    )


if __name__ == "__main__":
    main()

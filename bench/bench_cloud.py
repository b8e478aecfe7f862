"""Cloud throughput for what devices do all day: polls answered 304, and state reports.

Run (after scripts/bootstrap.sh, as root for PostgreSQL):
    .venv/bin/python bench/bench_cloud.py [--backend sqlite|postgresql|both]
        [--devices 50] [--clients 16] [--seconds 5]

The real `iotistic-cloud serve` (one process) is pinned to CPU 0; this load generator (and
PostgreSQL, when used) to CPU 1, so the figures are "one core of cloud". For each backend:
- `GET /health` (baseline in the same run: the HTTP stack plus a `SELECT 1`),
- `GET /api/v1/device/{uuid}/state` with a matching `If-None-Match` (304),
- `PATCH /api/v1/device/state` with a typical diff (uptime, cpu, memory: about 150 bytes),
- `PATCH /api/v1/device/state` with a full report of 10 services (about 3 KB),
as requests/s and p50/p99 latency with N concurrent keep-alive clients, each request for
one of --devices registered devices. From those, the devices one core serves at the default
intervals (a poll every 60 s, a report every 10 s, a full one every 300 s) at 100 % CPU.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.cloud.device_kit import SimDevice, provision  # noqa: E402
from tests.support.cloud_process import CloudProcess  # noqa: E402
from tests.support.postgres import PostgresServer  # noqa: E402

POLL_S, REPORT_S, FULL_S = 60.0, 10.0, 300.0
WARMUP_S = 1.0
SERVICES = 10


@dataclass
class Result:
    name: str
    requests: int
    seconds: float
    latencies_ms: list[float]

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    def pct(self, q: float) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    def line(self, baseline: Result | None) -> str:
        ratio = f"  ({self.rps / baseline.rps:.2f}x health)" if baseline else ""
        p50 = statistics.median(self.latencies_ms)
        return (
            f"{self.name:<28} {self.rps:8.0f} req/s  p50 {p50:6.2f} ms"
            f"  p99 {self.pct(0.99):6.2f} ms{ratio}"
        )


Request = Callable[[aiohttp.ClientSession, int], Awaitable[int]]


async def load(name: str, request: Request, clients: int, seconds: float) -> Result:
    """`clients` loops, each on its own connection, for `seconds` after a warm-up."""
    latencies: list[float] = []
    counter = itertools.count()
    measuring = False

    async def client() -> None:
        connector = aiohttp.TCPConnector(limit=1)
        async with aiohttp.ClientSession(connector=connector) as session:
            while not stop.is_set():
                started = time.perf_counter()
                status = await request(session, next(counter))
                assert status < 400, f"{name}: HTTP {status}"
                if measuring:
                    latencies.append((time.perf_counter() - started) * 1000)

    stop = asyncio.Event()
    tasks = [asyncio.create_task(client()) for _ in range(clients)]
    await asyncio.sleep(WARMUP_S)
    measuring, started = True, time.perf_counter()
    await asyncio.sleep(seconds)
    measuring = False
    elapsed = time.perf_counter() - started
    stop.set()
    await asyncio.gather(*tasks)
    return Result(name, len(latencies), elapsed, latencies)


def service(index: int) -> dict[str, Any]:
    return {
        "serviceId": index,
        "serviceName": f"svc{index}",
        "status": "Running",
        "targetState": "running",
        "containerId": f"{index:064x}",
        "image": f"registry.example/fleet/svc{index}:1.4.2",
        "restartCount": 0,
        "error": None,
    }


FULL_FIELDS: dict[str, Any] = {
    "apps": {
        "1001": {
            "appId": 1001,
            "appName": "fleet",
            "services": {f"svc{i}": service(i) for i in range(SERVICES)},
        }
    },
    "config": {},
    "targetVersion": 3,
    "targetApplied": True,
    "cpu_usage": 12.5,
    "memory_usage": 512,
    "memory_total": 2048,
    "agent_version": "0.1.0",
    "os_version": "Debian GNU/Linux 12 (bookworm)",
}


async def provision_devices(cloud: CloudProcess, count: int) -> list[tuple[SimDevice, str]]:
    """Register devices, give each a target, and read its ETag (what a device polls with)."""
    headers = cloud.admin_headers
    async with httpx.AsyncClient(base_url=cloud.url, timeout=30) as client:
        created = await client.post(
            "/api/admin/v1/keys", json={"maxDevices": count}, headers=headers
        )
        key = created.json()["key"]
        devices = []
        for index in range(count):
            device = await provision(client, key, name=f"bench-{index}")
            target = {
                "apps": {
                    "1001": {
                        "appId": 1001,
                        "appName": "fleet",
                        "services": [
                            {"serviceId": i, "serviceName": f"svc{i}", "imageName": f"r/s{i}:1"}
                            for i in range(SERVICES)
                        ],
                    }
                },
                "config": {},
            }
            put = await client.put(
                f"/api/admin/v1/devices/{device.uuid}/target", json=target, headers=headers
            )
            assert put.status_code == 200, put.text
            polled = await client.get(device.state_path, headers=device.auth)
            devices.append((device, polled.headers["ETag"]))
        return devices


async def measure(cloud: CloudProcess, devices: int, clients: int, seconds: float) -> list[Result]:
    fleet = await provision_devices(cloud, devices)
    url = cloud.url
    sequences = [0] * len(fleet)

    async def health(session: aiohttp.ClientSession, n: int) -> int:
        async with session.get(f"{url}/health") as response:
            await response.read()
            return response.status

    async def poll(session: aiohttp.ClientSession, n: int) -> int:
        device, etag = fleet[n % len(fleet)]
        headers = {**device.auth, "If-None-Match": etag}
        async with session.get(f"{url}{device.state_path}", headers=headers) as response:
            await response.read()
            assert response.status == 304
            return response.status

    def next_report(n: int, fields: dict[str, Any], full: bool) -> tuple[SimDevice, dict[str, Any]]:
        index = n % len(fleet)
        sequences[index] += 1
        device = fleet[index][0]
        body = {
            "full": full,
            "sequence": sequences[index],
            "reportedAt": "2026-11-25T12:00:00Z",
            **fields,
        }
        return device, {device.uuid: body}

    async def report(session: aiohttp.ClientSession, n: int, full: bool) -> int:
        fields = FULL_FIELDS if full else {"uptime": n, "cpu_usage": n % 100, "memory_usage": n}
        device, body = next_report(n, fields, full)
        async with session.patch(
            f"{url}/api/v1/device/state", json=body, headers=device.auth
        ) as response:
            await response.read()
            return response.status

    async def diff_report(session: aiohttp.ClientSession, n: int) -> int:
        return await report(session, n, False)

    async def full_report(session: aiohttp.ClientSession, n: int) -> int:
        return await report(session, n, True)

    return [
        await load("GET /health (baseline)", health, clients, seconds),
        await load("poll, 304", poll, clients, seconds),
        await load("report, diff (~150 B)", diff_report, clients, seconds),
        await load(f"report, full ({SERVICES} services)", full_report, clients, seconds),
    ]


def devices_per_core(poll: Result, diff: Result, full: Result) -> float:
    """At 100 % of the cloud's core: each device costs 1/rps seconds per request."""
    cost = (1 / POLL_S) / poll.rps + (1 / REPORT_S) / diff.rps + (1 / FULL_S) / full.rps
    return 1 / cost


def run_backend(name: str, args: argparse.Namespace, work: Path) -> None:
    postgres = None
    database_url = None
    if name == "postgresql":
        postgres = PostgresServer().start()
        database_url = postgres.create_database("bench")
        assert postgres.proc is not None
        os.sched_setaffinity(postgres.proc.pid, {1})
    cloud = CloudProcess(work / name, database_url=database_url).start()
    assert cloud.proc is not None
    os.sched_setaffinity(cloud.proc.pid, {0})
    try:
        results = asyncio.run(measure(cloud, args.devices, args.clients, args.seconds))
    finally:
        cloud.stop()
        if postgres is not None:
            postgres.stop()
    baseline = results[0]
    print(f"\n== {name}: {args.devices} devices, {args.clients} clients, cloud on one core ==")
    for result in results:
        print(result.line(None if result is baseline else baseline))
    capacity = devices_per_core(results[1], results[2], results[3])
    print(
        f"devices per core at poll {POLL_S:.0f} s / report {REPORT_S:.0f} s / full "
        f"{FULL_S:.0f} s: {capacity:,.0f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--devices", type=int, default=50)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    if len(os.sched_getaffinity(0)) < 2:
        sys.exit("needs two CPUs: one for the cloud, one for the load")
    os.sched_setaffinity(0, {1})
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    with tempfile.TemporaryDirectory(prefix="bench-cloud-") as work:
        for backend in backends:
            run_backend(backend, args, Path(work))


if __name__ == "__main__":
    main()

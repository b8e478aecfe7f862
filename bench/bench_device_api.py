"""Device API latency and throughput on the real agent, against `GET /ping` in the same run.

Run (as root, after scripts/bootstrap.sh): .venv/bin/python bench/bench_device_api.py
    [--services 10] [--requests 2000] [--clients 8]

The agent runs 10 services of a small busybox image from a local registry. Measured with a
keep-alive aiohttp client, sequentially (one connection) and with N concurrent clients (one
connection each), after a warm-up:
- `GET /ping` (baseline: the HTTP stack alone, no auth, no state),
- `GET /v2/applications/state` (auth, target, last snapshot and failures -> JSON),
- `GET /v1/services` (for context: asks the engine for a fresh snapshot on every call),
as p50/p99 latency and requests/s; and the agent's RSS before and after the load (and its
peak, VmHWM). Every loop is bounded by a request count and a time limit.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.integration import dockerkit  # noqa: E402
from tests.integration.agent_process import AgentProcess, app, svc, target  # noqa: E402
from tests.integration.waiting import wait_for  # noqa: E402

APP_ID = 4242  # not 1001: the other integration tests use that one
TIME_LIMIT_S = 30.0  # per measurement
WARMUP = 200


def proc_status_mb(pid: int, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field}")


def settled_rss(pid: int, seconds: float = 3.0) -> float:
    """Largest RSS seen while the process idles for a few seconds (sampled every 100 ms)."""
    samples = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        samples.append(proc_status_mb(pid, "VmRSS"))
        time.sleep(0.1)
    return max(samples)


@dataclass
class Result:
    path: str
    clients: int
    latencies_s: list[float]
    elapsed_s: float

    @property
    def rps(self) -> float:
        return len(self.latencies_s) / self.elapsed_s

    def quantile_ms(self, q: float) -> float:
        ordered = sorted(self.latencies_s)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

    @property
    def p50_ms(self) -> float:
        return statistics.median(self.latencies_s) * 1000


async def _client(
    url: str, headers: dict[str, str], count: int, deadline: float, out: list[float]
) -> None:
    connector = aiohttp.TCPConnector(limit=1, force_close=False)
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:
        for _ in range(count):
            if time.perf_counter() > deadline:
                return
            started = time.perf_counter()
            async with session.get(url) as response:
                await response.read()
                if response.status != 200:
                    raise RuntimeError(f"{url}: {response.status} {await response.text()}")
            out.append(time.perf_counter() - started)


async def measure(
    base: str, path: str, headers: dict[str, str], requests: int, clients: int
) -> Result:
    url = base + path
    await _client(url, headers, WARMUP, time.perf_counter() + TIME_LIMIT_S, [])
    per_client = max(1, requests // clients)
    latencies: list[list[float]] = [[] for _ in range(clients)]
    deadline = time.perf_counter() + TIME_LIMIT_S
    started = time.perf_counter()
    await asyncio.gather(
        *(_client(url, headers, per_client, deadline, latencies[i]) for i in range(clients))
    )
    elapsed = time.perf_counter() - started
    return Result(path, clients, [x for part in latencies for x in part], elapsed)


def all_running(agent: AgentProcess, count: int) -> bool:
    services = agent.apps_state().get(str(APP_ID), {}).get("services", {})
    return len(services) == count and all(s["status"] == "Running" for s in services.values())


def remove_bench_containers() -> None:
    """Only this benchmark's app: other agents on the same engine keep theirs."""
    ids = dockerkit.docker(
        "ps", "--all", "--quiet", "--filter", f"label=io.iotistic.app-id={APP_ID}"
    ).stdout.split()
    if ids:
        dockerkit.docker("rm", "--force", "--volumes", *ids, check=False)
    networks = dockerkit.docker(
        "network", "ls", "--quiet", "--filter", f"label=io.iotistic.app-id={APP_ID}"
    ).stdout.split()
    if networks:
        dockerkit.docker("network", "rm", *networks, check=False)


def report(results: list[Result], rss: tuple[float, float, float]) -> None:
    baseline = {r.clients: r for r in results if r.path == "/ping"}
    print(
        f"{'route':<28} {'clients':>7} {'requests':>8} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'req/s':>8} {'p50 vs ping':>11} {'req/s vs ping':>13}"
    )
    for r in results:
        base = baseline[r.clients]
        print(
            f"{'GET ' + r.path:<28} {r.clients:>7} {len(r.latencies_s):>8} {r.p50_ms:>8.2f} "
            f"{r.quantile_ms(0.99):>8.2f} {r.rps:>8.0f} {r.p50_ms / base.p50_ms:>10.2f}x "
            f"{r.rps / base.rps:>12.2f}x"
        )
    print(rss_line(rss))


def rss_line(rss: tuple[float, float, float]) -> str:
    before, after, peak = rss
    return (
        f"agent RSS before the load: {before:.1f} MB; after: {after:.1f} MB "
        f"(+{after - before:.1f} MB); peak (VmHWM): {peak:.1f} MB"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--services", type=int, default=10)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=8)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, dockerkit.local_test_images(Path(tmp)) as images:
        dockerkit.docker("pull", images.v1)
        agent = AgentProcess(Path(tmp) / "agent", interval_ms=30000, LOG_LEVEL="info").start()
        assert agent.proc is not None
        pid = agent.proc.pid
        try:
            services = [svc(i + 1, f"s{i}", images.v1) for i in range(args.services)]
            agent.set_target(target(app(APP_ID, *services, name="bench")))
            wait_for(
                lambda: all_running(agent, args.services),
                120,
                0.1,
                f"services not all running; log tail:\n{agent.log()[-2000:]}",
            )
            rss_before = settled_rss(pid)
            results: list[Result] = []
            for clients, count in ((1, args.requests), (args.clients, args.requests * 2)):
                for path in ("/ping", "/v2/applications/state"):
                    results.append(
                        asyncio.run(measure(agent.url, path, agent.headers, count, clients))
                    )
            results.append(asyncio.run(measure(agent.url, "/v1/services", agent.headers, 500, 1)))
            rss_after = settled_rss(pid)
            peak = proc_status_mb(pid, "VmHWM")
            assert all_running(agent, args.services), "services stopped during the load"
        finally:
            agent.stop()
            remove_bench_containers()
    print(f"services: {args.services}")
    report(results, (rss_before, rss_after, peak))


if __name__ == "__main__":
    main()

"""An update under load from many Device API clients (issue 12, item 8), on the real agent.

Run (as root, after scripts/bootstrap.sh): .venv/bin/python bench/bench_device_api_load.py
    [--services 5] [--clients 100] [--rounds 3] [--think-ms 0]

The agent runs `--services` services of a small busybox image from a local registry. An
update switches every service to the other test image (v1 <-> v2, both already pulled) and
lasts from the POST of the target until every service runs a new container of the new image
(the bench polls `/v2/applications/state` every 50 ms on its own connection).

Each round does one update without load, then one with `--clients` clients (one keep-alive
connection each, in a separate process so that the bench's own polling is not queued behind
them) each asking `GET /v1/device` in a loop, waiting `--think-ms` between two requests (0:
back to back). Reported: the median update time of both kinds and their ratio (the goal: at
most 1.2x), `/v1/device` latency under the load (p50, p99; the goal: p99 under 50 ms) against
`GET /ping` under the same load in the same run, requests served, and the agent's RSS before,
after and at its peak (VmHWM).
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import aiohttp
import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.bench_device_api import (  # noqa: E402
    proc_status_mb,
    remove_bench_containers,
    rss_line,
    settled_rss,
)
from tests.integration import dockerkit  # noqa: E402
from tests.integration.agent_process import AgentProcess, app, svc, target  # noqa: E402
from tests.integration.waiting import wait_for  # noqa: E402

APP_ID = 4242  # bench_device_api.remove_bench_containers cleans up this app
UPDATE_TIMEOUT_S = 180.0
POLL_S = 0.05
WARMUP_S = 2.0


# --- the load, in its own process ---------------------------------------------------------


async def _client(
    url: str, headers: dict[str, str], think_s: float, stop_at: float, out: list[float]
) -> None:
    connector = aiohttp.TCPConnector(limit=1)
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(connector=connector, headers=headers, timeout=timeout) as s:
        while time.monotonic() < stop_at:
            started = time.perf_counter()
            async with s.get(url) as response:
                await response.read()
                if response.status != 200:
                    raise RuntimeError(f"{url}: {response.status} {await response.text()}")
            out.append(time.perf_counter() - started)
            if think_s:
                await asyncio.sleep(think_s)


async def _load(
    url: str, headers: dict[str, str], clients: int, think_s: float, pipe: Connection
) -> None:
    latencies: list[list[float]] = [[] for _ in range(clients)]
    stop_at = float("inf")
    tasks = [
        asyncio.create_task(_client(url, headers, think_s, stop_at, latencies[i]))
        for i in range(clients)
    ]
    await asyncio.sleep(WARMUP_S)
    for part in latencies:
        part.clear()  # the warm-up (connections, first requests) is not measured
    pipe.send("warm")
    # Stop when the parent says so: checked from a thread so the loop keeps serving.
    await asyncio.to_thread(pipe.recv)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    pipe.send([x for part in latencies for x in part])


def _load_process(
    url: str, headers: dict[str, str], clients: int, think_s: float, pipe: Connection
) -> None:
    asyncio.run(_load(url, headers, clients, think_s, pipe))


class Load:
    """`clients` clients on `url` in a child process, from `start()` until `stop()`."""

    def __init__(self, url: str, headers: dict[str, str], clients: int, think_s: float) -> None:
        self._parent, child = multiprocessing.Pipe()
        self._started = 0.0
        self.elapsed_s = 0.0
        self._process = multiprocessing.get_context("spawn").Process(
            target=_load_process, args=(url, headers, clients, think_s, child), daemon=True
        )

    def __enter__(self) -> Load:
        self._process.start()
        if not self._parent.poll(60):
            raise RuntimeError("the load did not start")
        assert self._parent.recv() == "warm"
        self._started = time.perf_counter()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.elapsed_s = time.perf_counter() - self._started
        self._parent.send("stop")
        self.latencies_s: list[float] = self._parent.recv() if self._parent.poll(60) else []
        self._process.join(30)


# --- updates --------------------------------------------------------------------------------


def running_on(agent: AgentProcess, image: str, count: int, old_ids: set[str]) -> bool:
    state = httpx.get(f"{agent.url}/v2/applications/state", headers=agent.headers, timeout=30)
    services = state.json().get(str(APP_ID), {}).get("services", {})
    return len(services) == count and all(
        s["status"] == "Running" and s["image"] == image and s["containerId"] not in old_ids
        for s in services.values()
    )


def container_ids(agent: AgentProcess) -> set[str]:
    state = agent.apps_state()[str(APP_ID)]["services"]
    return {s["containerId"] for s in state.values()}


def the_target(image: str, services: int) -> dict[str, Any]:
    return target(app(APP_ID, *(svc(i + 1, f"s{i}", image) for i in range(services)), name="b"))


def update(agent: AgentProcess, image: str, services: int) -> float:
    """Seconds from posting the new image until every service runs it in a new container."""
    old = container_ids(agent)
    started = time.perf_counter()
    agent.set_target(the_target(image, services))
    wait_for(
        lambda: running_on(agent, image, services, old),
        UPDATE_TIMEOUT_S,
        POLL_S,
        f"update to {image} did not finish; log tail:\n{agent.log()[-2000:]}",
    )
    return time.perf_counter() - started


# --- report ---------------------------------------------------------------------------------


@dataclass
class Phase:
    """Updates under one kind of load (None: no load), and the latencies the load saw."""

    path: str | None
    updates_s: list[float] = field(default_factory=list)
    latencies_s: list[float] = field(default_factory=list)
    elapsed_s: float = 0.0

    def run_update(self, agent: AgentProcess, image: str, args: argparse.Namespace) -> None:
        if self.path is None:
            self.updates_s.append(update(agent, image, args.services))
            return
        load = Load(agent.url + self.path, agent.headers, args.clients, args.think_ms / 1000)
        with load:
            self.updates_s.append(update(agent, image, args.services))
        self.latencies_s += load.latencies_s
        self.elapsed_s += load.elapsed_s

    @property
    def update_s(self) -> float:
        return statistics.median(self.updates_s)


def quantile_ms(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def report(args: argparse.Namespace, phases: list[Phase], rss: tuple[float, float, float]) -> None:
    idle, ping = phases[0], phases[1]
    print(f"services: {args.services}; clients: {args.clients}; think time: {args.think_ms} ms")
    print(
        f"{'load during the update':<24} {'update s':>8} {'vs none':>7} {'requests':>8} "
        f"{'req/s':>6} {'p50 ms':>7} {'p99 ms':>7} {'p50 vs ping':>11} {'p99 vs ping':>11}"
    )
    for phase in phases:
        times = ", ".join(f"{t:.2f}" for t in phase.updates_s)
        ratio = phase.update_s / idle.update_s
        line = f"{phase.path or 'none':<24} {phase.update_s:>8.2f} {ratio:>6.2f}x"
        if phase.latencies_s:
            n = len(phase.latencies_s)
            p50, p99 = (quantile_ms(phase.latencies_s, q) for q in (0.5, 0.99))
            ping50, ping99 = (quantile_ms(ping.latencies_s, q) for q in (0.5, 0.99))
            line += (
                f" {n:>8} {n / phase.elapsed_s:>6.0f} {p50:>7.2f} {p99:>7.2f}"
                f" {p50 / ping50:>10.2f}x {p99 / ping99:>10.2f}x"
            )
        print(f"{line}   (updates: {times})")
    print(rss_line(rss))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--services", type=int, default=5)
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--think-ms", type=int, default=0)
    args = parser.parse_args()
    phases = [Phase(None), Phase("/ping"), Phase("/v1/device")]
    with tempfile.TemporaryDirectory() as tmp, dockerkit.local_test_images(Path(tmp)) as images:
        dockerkit.docker("pull", images.v1)
        dockerkit.docker("pull", images.v2)
        agent = AgentProcess(Path(tmp) / "agent", interval_ms=30000, LOG_LEVEL="info").start()
        assert agent.proc is not None
        pid = agent.proc.pid
        try:
            agent.set_target(the_target(images.v1, args.services))
            wait_for(
                lambda: running_on(agent, images.v1, args.services, set()),
                UPDATE_TIMEOUT_S,
                POLL_S,
                f"services not all running; log tail:\n{agent.log()[-2000:]}",
            )
            rss_before = settled_rss(pid)
            image = images.v1
            # Interleaved, so that a change in the machine's other load hits every kind alike.
            for _ in range(args.rounds):
                for phase in phases:
                    image = images.v2 if image == images.v1 else images.v1
                    phase.run_update(agent, image, args)
            rss_after = settled_rss(pid)
            peak = proc_status_mb(pid, "VmHWM")
        finally:
            agent.stop()
            remove_bench_containers()
    report(args, phases, (rss_before, rss_after, peak))


if __name__ == "__main__":
    main()

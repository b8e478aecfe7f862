"""The agent's cost of one cloud sync cycle (a poll answered 304 plus one diff report), in
CPU time, against the real `iotistic-cloud serve` on SQLite.

Run: .venv/bin/python bench/bench_sync.py [--cycles 300]

The agent side is the real code: `TargetPoller.poll_once` and `StateReporter.report_once`
with its SQLite stores, the collector's real psutil metrics and a 10-service applications
state, over one keep-alive aiohttp session. Baseline in the same run: two bare aiohttp
requests (`GET /health`) per cycle, i.e. the HTTP stack alone. Also reported: one full
report's size on the wire (plain and gzip) and a typical diff's; and the real agent's RSS
in local mode, right after provisioning, and provisioned and syncing after a restart.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from iotistic_agent.cloud.client import SyncClient  # noqa: E402
from iotistic_agent.cloud.poller import TargetPoller  # noqa: E402
from iotistic_agent.cloud.report_builder import device_fields, diff_fields  # noqa: E402
from iotistic_agent.cloud.reporter import StateReporter  # noqa: E402
from iotistic_agent.cloud.retry import ConnectionMonitor, RetryGate, RetryPolicy  # noqa: E402
from iotistic_agent.store.db import open_database  # noqa: E402
from iotistic_agent.store.device import CloudCredentials  # noqa: E402
from iotistic_agent.store.sync_store import SyncStore  # noqa: E402
from iotistic_agent.store.target_store import TargetStore  # noqa: E402
from iotistic_agent.telemetry.shared import metrics_summary  # noqa: E402

from bench.bench_cloud import FULL_FIELDS  # noqa: E402
from bench.bench_device_api import settled_rss  # noqa: E402
from tests.cloud.device_kit import provision  # noqa: E402
from tests.integration.agent_process import AgentProcess  # noqa: E402
from tests.integration.waiting import wait_for  # noqa: E402
from tests.support.cloud_process import CloudProcess  # noqa: E402


class Clock:
    """Moves one report interval per cycle, so that every cycle builds a report."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def provisioned(cloud: CloudProcess) -> CloudCredentials:
    async with httpx.AsyncClient(base_url=cloud.url, timeout=30) as client:
        created = await client.post("/api/admin/v1/keys", json={}, headers=cloud.admin_headers)
        device = await provision(client, created.json()["key"])
        target = {"apps": {}, "config": {"SOME_SETTING": "1"}}
        await client.put(
            f"/api/admin/v1/devices/{device.uuid}/target", json=target, headers=cloud.admin_headers
        )
    return CloudCredentials(device.uuid, cloud.url, device.api_key, None, True)


async def measure(cloud: CloudProcess, data_dir: Path, cycles: int) -> None:
    creds = await provisioned(cloud)
    conn = open_database(data_dir / "device.sqlite")
    targets, store = TargetStore(conn), SyncStore(conn, 1000)
    clock = Clock()
    apps = FULL_FIELDS["apps"]

    async def collect() -> dict[str, Any]:
        metrics = await asyncio.to_thread(metrics_summary, data_dir)
        return device_fields(apps, {}, targets.stored.version, metrics, "0.1.0", "Debian 12")

    async with aiohttp.ClientSession() as session:
        client = SyncClient(session, creds)
        policy = RetryPolicy()
        monitor = ConnectionMonitor()
        poller = TargetPoller(
            client, targets, store, RetryGate(policy, clock), monitor, lambda: None, 60, clock
        )
        reporter = StateReporter(
            client, store, RetryGate(policy, clock), monitor, collect, 10, 1e9, clock
        )
        assert await poller.poll_once()  # first poll: 200 with the target
        await reporter.report_once()  # first report: full

        async def cycle() -> None:
            clock.now += 10
            await poller.poll_once()
            await reporter.report_once()

        async def baseline() -> None:
            for _ in range(2):
                async with session.get(f"{cloud.url}/health") as response:
                    await response.read()

        steps = (("bare HTTP x2 (baseline)", baseline), ("poll 304 + diff report", cycle))
        for name, step in steps:
            for _ in range(20):
                await step()
            cpu, wall = time.process_time(), time.perf_counter()
            for _ in range(cycles):
                await step()
            cpu_ms = (time.process_time() - cpu) * 1000 / cycles
            wall_ms = (time.perf_counter() - wall) * 1000 / cycles
            print(f"{name:<26} CPU {cpu_ms:6.3f} ms/cycle   wall {wall_ms:6.2f} ms/cycle")
            if name.startswith("bare"):
                base_cpu = cpu_ms
        print(f"cycle / baseline CPU: {cpu_ms / base_cpu:.2f}x")
        assert reporter.sent >= cycles and store.queued() == 0

    full = device_fields(apps, {}, 1, metrics_summary(data_dir), "0.1.0", "Debian 12")
    full_body = json.dumps({creds.uuid: {"full": True, "sequence": 1, **full}}).encode()
    later = {**full, "uptime": (full.get("uptime") or 0) + 10, "cpu_usage": 7.5}
    diff_body = json.dumps({creds.uuid: {"sequence": 2, **diff_fields(full, later)}}).encode()
    print(
        f"full report ({len(apps['1001']['services'])} services): {len(full_body)} B plain, "
        f"{len(gzip.compress(full_body))} B gzip; typical diff: {len(diff_body)} B"
    )
    # Upper bound: every cycle here polls, while at the defaults one report in six does.
    per_day_s = cpu_ms / 1000 * (86400 / 10)
    print(f"at the defaults (a report every 10 s): at most {per_day_s:.0f} s of CPU per day")


def agent_rss(cloud: CloudProcess, work: Path) -> None:
    """RSS of the real agent: local mode, just provisioned, and syncing after a restart."""
    local = AgentProcess(work / "local").start()
    try:
        assert local.proc is not None
        local_rss = settled_rss(local.proc.pid)
    finally:
        local.stop()
    key = cloud.cli("keys", "create", "--quiet").stdout.strip()
    env = {
        "PROVISIONING_API_KEY": key,
        "CLOUD_API_ENDPOINT": cloud.url,
        "REPORT_INTERVAL_MS": "1000",
        "POLL_INTERVAL_MS": "1000",
    }
    agent = AgentProcess(work / "synced", **env).start()
    try:
        wait_for(lambda: agent.get("/v1/device").json()["cloud"]["state"] == "online", 30)
        assert agent.proc is not None
        provisioned_rss = settled_rss(agent.proc.pid)
        agent.terminate()
        agent.start()
        wait_for(lambda: agent.get("/v1/device").json()["cloud"].get("reportsSent", 0) >= 2, 30)
        syncing_rss = settled_rss(agent.proc.pid)
    finally:
        agent.stop()
    print(
        f"agent RSS: local mode {local_rss:.1f} MB; right after provisioning "
        f"{provisioned_rss:.1f} MB ({provisioned_rss / local_rss:.2f}x); provisioned and "
        f"syncing after a restart {syncing_rss:.1f} MB ({syncing_rss / local_rss:.2f}x)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=300)
    args = parser.parse_args()
    if len(os.sched_getaffinity(0)) >= 2:
        os.sched_setaffinity(0, {1})
    with tempfile.TemporaryDirectory(prefix="bench-sync-") as work:
        cloud = CloudProcess(Path(work) / "cloud").start()
        assert cloud.proc is not None
        if len(os.sched_getaffinity(0)) >= 2:
            os.sched_setaffinity(cloud.proc.pid, {0})
        try:
            asyncio.run(measure(cloud, Path(work), args.cycles))
            agent_rss(cloud, Path(work))
        finally:
            cloud.stop()


if __name__ == "__main__":
    main()

"""Log shipping cost: bytes on the wire per 1,000 lines, and the agent's CPU per 1,000 lines.

Run (as root, after scripts/bootstrap.sh): .venv/bin/python bench/bench_log_shipping.py
[--lines 100000] [--wire-only]

1. Wire bytes (in process, no engine): 1,000 typical container lines and 1,000 agent records
   as they are uploaded (NDJSON of the wire records), without and with gzip; baseline the raw
   text of the same lines.
2. Agent CPU (real processes): a local cloud and a provisioned agent; a container prints
   ``--lines`` lines at full speed; the agent's user+system CPU (from /proc) from the target
   change until the cloud holds every line, per 1,000 lines. Baseline in the same run:
   ``docker logs`` reading the same container's log to /dev/null (the CPU of the docker CLI
   and of dockerd while it serves it).
   Compressed (the default) and uncompressed uploads, one agent each.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from iotistic_agent.engine.protocol import ContainerLogLine  # noqa: E402
from iotistic_agent.logs.collector import record_of  # noqa: E402
from iotistic_agent.logs.formatting import timestamp as utc_timestamp  # noqa: E402
from iotistic_agent.logs.outbox import LogOutbox  # noqa: E402
from iotistic_agent.logs.uploader import ndjson  # noqa: E402

from tests.integration import dockerkit  # noqa: E402
from tests.integration.agent_process import AgentProcess, app, svc, target  # noqa: E402
from tests.integration.waiting import wait_for  # noqa: E402
from tests.support.cloud_process import CloudProcess  # noqa: E402

PATHS = ["/api/items", "/api/items/42", "/health", "/api/orders", "/static/app.js"]


def container_lines(n: int, rng: random.Random) -> list[ContainerLogLine]:
    out = []
    for i in range(n):
        text = (
            f"2026-11-25 10:{i // 600 % 60:02d}:{i // 10 % 60:02d} INFO http "
            f"{rng.choice(['GET', 'POST'])} {rng.choice(PATHS)} {rng.choice([200, 200, 201, 404])}"
            f" {rng.randint(1, 250)}ms user={rng.randint(1, 5000)}"
        )
        stamp = f"2026-11-25T10:00:{i // 1000 % 60:02d}.{rng.randrange(10**9):09d}Z"
        out.append(ContainerLogLine(stamp, "stdout", text))
    return out


def agent_records(n: int, rng: random.Random) -> list[dict[str, Any]]:
    return [
        {
            "timestamp": utc_timestamp(1_795_600_000 + i * 0.5),
            "level": rng.choice(["info", "info", "debug", "warn"]),
            "source": "agent",
            "component": rng.choice(["cloudSync", "containerManager", "mqtt"]),
            "message": rng.choice(
                ["poll answered 304", "report sent", "service web running", "reconcile pass"]
            ),
            "context": {"durationMs": rng.randint(1, 300)},
        }
        for i in range(n)
    ]


def wire_bytes(tmp: Path) -> None:
    rng = random.Random(1)
    lines = container_lines(1000, rng)
    raw = sum(len(line.message.encode()) + 1 for line in lines)
    cases = {
        "container lines": [record_of(line, "shop", "web") for line in lines],
        "agent records": agent_records(1000, rng),
    }
    print("| 1,000 lines | raw text | NDJSON | NDJSON gzip | gzip vs NDJSON |")
    print("|---|---|---|---|---|")
    for name, records in cases.items():
        outbox = LogOutbox(tmp / f"{name}.sqlite", 10_000)
        outbox.store(records)
        body = ndjson([b for _, b in outbox.oldest(1000, 10**9)])
        packed = gzip.compress(body, compresslevel=6)
        raw_text = raw if name == "container lines" else sum(len(r["message"]) + 1 for r in records)
        print(
            f"| {name} | {raw_text:,} B | {len(body):,} B | {len(packed):,} B | "
            f"{len(packed) / len(body):.2f}x |"
        )
        outbox.close()


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def shipped(agent: AgentProcess, lines: int) -> bool:
    status = agent.get("/v1/device").json()["logShipping"]
    return bool(status.get("shipped", 0) >= lines and status.get("pending") == 0)


def agent_cpu(tmp: Path, images: dockerkit.ImageSet, lines: int, compress: bool) -> None:
    cloud = CloudProcess(tmp / f"cloud-{compress}").start()
    key = cloud.cli("keys", "create", "--quiet").stdout.strip()
    agent = AgentProcess(
        tmp / f"agent-{compress}",
        PROVISIONING_API_KEY=key,
        CLOUD_API_ENDPOINT=cloud.url,
        POLL_INTERVAL_MS="500",
        CLOUD_LOG_UPLOAD_INTERVAL="1000",
        LOG_COMPRESSION="true" if compress else "false",
        CLOUD_LOG_SAMPLING_RATE_INFO="0",  # the agent's own chatter out of the count
    ).start()
    assert agent.proc is not None
    try:
        device = wait_for(
            lambda: (s := agent.get("/v1/provision").json())["provisioned"] and s["uuid"], 30
        )
        wait_for(lambda: agent.get("/v1/device").json()["logShipping"]["state"] == "running", 10)
        before_shipped = agent.get("/v1/device").json()["logShipping"]["shipped"]
        script = f"seq 1 {lines}; while true; do sleep 3600 & wait $!; done"
        flood = svc(1, "flood", images.v1, config={"command": ["sh", "-c", script]})
        path = tmp / f"target-{compress}.json"
        path.write_text(json.dumps({**target(app(1001, flood, name="bench")), "config": {}}))
        cpu_before = cpu_s(agent.proc.pid)
        started = time.perf_counter()
        assert cloud.cli("devices", "set-target", str(device), str(path)).returncode == 0
        peak = 0.0

        def done() -> bool:
            nonlocal peak
            peak = max(peak, rss_mb(agent.proc.pid))  # type: ignore[union-attr]
            return shipped(agent, before_shipped + lines)

        wait_for(done, 600, 0.2)
        elapsed = time.perf_counter() - started
        agent_cpu_s = cpu_s(agent.proc.pid) - cpu_before
        status = agent.get("/v1/device").json()["logShipping"]
        container = dockerkit.docker(
            "ps", "-q", "--filter", "label=io.iotistic.service-name=flood"
        ).stdout.split()[0]
        # The engine serves both readers: its CPU counts in the baseline, and the CLI's.
        dockerd = int(
            subprocess.run(["pidof", "dockerd"], capture_output=True, text=True).stdout.split()[0]
        )
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        engine_before = cpu_s(dockerd)
        subprocess.run(["docker", "logs", container], stdout=subprocess.DEVNULL, check=True)
        engine_cpu_s = cpu_s(dockerd) - engine_before
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        docker_cpu_s = (after.ru_utime - usage.ru_utime) + (after.ru_stime - usage.ru_stime)
        docker_cpu_s += engine_cpu_s
        per_k = agent_cpu_s / lines * 1000
        print(
            f"| {'gzip' if compress else 'plain'} | {lines:,} | {elapsed:.1f} s | "
            f"{per_k * 1000:.1f} ms | {docker_cpu_s / lines * 1e6:.1f} ms | "
            f"{agent_cpu_s / max(docker_cpu_s, 1e-9):.1f}x | "
            f"{status['bytesSent'] / lines * 1000:,.0f} B | {peak:.1f} MB |"
        )
    finally:
        agent.stop()
        cloud.stop()
        dockerkit.remove_managed_objects()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lines", type=int, default=100_000)
    parser.add_argument("--wire-only", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        wire_bytes(Path(tmp))
        if args.wire_only:
            return
        print()
        print(
            "| upload | lines | until all shipped | agent CPU per 1,000 lines | "
            "docker logs CPU per 1,000 (baseline) | ratio | bytes sent per 1,000 | peak RSS |"
        )
        print("|---|---|---|---|---|---|---|---|")
        with dockerkit.local_test_images(Path(tmp)) as images:
            dockerkit.docker("pull", images.v1)
            dockerkit.remove_managed_objects()
            for compress in (True, False):
                agent_cpu(Path(tmp), images, args.lines, compress)


if __name__ == "__main__":
    main()

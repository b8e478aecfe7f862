"""Agent overhead on the real engine, against plain `docker run` in the same run.

Run (as root, after scripts/bootstrap.sh): .venv/bin/python bench/bench_agent.py [--services 10]
[--rss-only] (`--rss-only`: just the idle RSS with no apps against a bare interpreter, no images
pulled, no containers started).

Measures:
- time for the agent to bring N services from a posted target to running, against
  `docker run -d` of the same N containers (image already local for both: ratio),
- time from a target change (new image for all N, downloaded) to all running again,
- agent RSS idle with no apps and with N services, against a bare Python interpreter.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.integration import dockerkit  # noqa: E402
from tests.integration.agent_process import AgentProcess, app, svc, target  # noqa: E402
from tests.integration.waiting import wait_for  # noqa: E402


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def settled_rss(pid: int, seconds: float = 3.0) -> float:
    """Largest RSS seen while the process idles for a few seconds (sampled every 100 ms)."""
    samples = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        samples.append(rss_mb(pid))
        time.sleep(0.1)
    return max(samples)


def docker_run_baseline(image: str, count: int) -> float:
    started = time.perf_counter()
    ids = [
        dockerkit.docker(
            "run", "-d", "--label", "iotistic.bench=1", "--name", f"bench{i}", image
        ).stdout.strip()
        for i in range(count)
    ]
    wait_for(
        lambda: all(
            dockerkit.docker("inspect", "-f", "{{.State.Running}}", cid).stdout.strip() == "true"
            for cid in ids
        ),
        60,
        0.02,
    )
    elapsed = time.perf_counter() - started
    dockerkit.docker("rm", "-f", *ids)
    return elapsed


def all_running(agent: AgentProcess, count: int, image: str) -> bool:
    services = agent.apps_state().get("1001", {}).get("services", {})
    return len(services) == count and all(
        s["status"] == "Running" and s["image"] == image for s in services.values()
    )


def n_services(image: str, count: int) -> dict[str, Any]:
    return target(app(1001, *(svc(i + 1, f"s{i}", image) for i in range(count))))


def bare_python_rss() -> float:
    baseline_python = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    time.sleep(1.0)
    python_rss = rss_mb(baseline_python.pid)
    baseline_python.kill()
    baseline_python.wait()
    return python_rss


def idle_rss_only() -> None:
    """Idle RSS with no apps, nothing else (needs the Docker engine only to answer)."""
    python_rss = bare_python_rss()
    with tempfile.TemporaryDirectory() as tmp:
        agent = AgentProcess(Path(tmp) / "agent", interval_ms=30000, LOG_LEVEL="info").start()
        assert agent.proc is not None
        try:
            idle_rss = settled_rss(agent.proc.pid)
        finally:
            agent.stop()
    print(f"bare python RSS (baseline): {python_rss:.1f} MB")
    print(f"agent idle RSS, no apps: {idle_rss:.1f} MB ({idle_rss / python_rss:.2f}x bare python)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--services", type=int, default=10)
    parser.add_argument(
        "--rss-only", action="store_true", help="only the idle RSS with no apps (quick)"
    )
    args = parser.parse_args()
    if args.rss_only:
        idle_rss_only()
        return
    count = args.services
    with tempfile.TemporaryDirectory() as tmp, dockerkit.local_test_images(Path(tmp)) as images:
        dockerkit.docker("pull", images.v1)
        dockerkit.remove_managed_objects()
        python_rss = bare_python_rss()

        docker_run_s = docker_run_baseline(images.v1, count)
        agent = AgentProcess(Path(tmp) / "agent", interval_ms=30000, LOG_LEVEL="info").start()
        assert agent.proc is not None
        try:
            idle_rss = settled_rss(agent.proc.pid)
            started = time.perf_counter()
            agent.set_target(n_services(images.v1, count))
            wait_for(lambda: all_running(agent, count, images.v1), 120, 0.02)
            agent_s = time.perf_counter() - started

            busy_rss = settled_rss(agent.proc.pid)
            started = time.perf_counter()
            agent.set_target(n_services(images.v2, count))
            wait_for(lambda: all_running(agent, count, images.v2), 180, 0.02)
            update_s = time.perf_counter() - started
        finally:
            agent.stop()
            dockerkit.remove_managed_objects()

    print(f"services: {count}")
    print(f"docker run -d x{count} (baseline): {docker_run_s:.2f} s")
    ratio = agent_s / docker_run_s
    print(f"agent, posted target -> all running: {agent_s:.2f} s ({ratio:.2f}x docker run)")
    print(f"agent, image update of all (download + replace) -> all running: {update_s:.2f} s")
    print(f"bare python RSS (baseline): {python_rss:.1f} MB")
    print(f"agent idle RSS, no apps: {idle_rss:.1f} MB ({idle_rss / python_rss:.2f}x bare python)")
    busy_ratio = busy_rss / python_rss
    print(f"agent idle RSS, {count} services: {busy_rss:.1f} MB ({busy_ratio:.2f}x bare python)")


if __name__ == "__main__":
    main()

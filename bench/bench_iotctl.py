"""iotctl start-up: wall time and peak RSS of real commands against a real agent.

Run (as root, after scripts/bootstrap.sh): .venv/bin/python bench/bench_iotctl.py [--runs 20]

Measures, against `python -c pass` timed in the same run (the machine is noisy: watch ratios):
- `iotctl status` (people's output: httpx + rich) and `iotctl apps list --json` (httpx only)
  against an agent running one app of three services: median and p90 wall time,
- the peak RSS of the iotctl process, from GNU time (`/usr/bin/time`, Debian package `time`):
  a child started by this (large) Python process would report this process's RSS as its own
  high-water mark, since vfork shares the parent's memory until exec.

Bytecode: the runs leave PYTHONDONTWRITEBYTECODE unset and start with warm-up runs, so imports
read cached .pyc files as they do for anyone running the installed tool twice. With the
variable set and no cache, every run compiles typer, httpx and rich from source again.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.integration import dockerkit  # noqa: E402
from tests.integration.agent_process import AgentProcess, app, svc, target  # noqa: E402

IOTCTL = Path(sys.executable).with_name("iotctl")
WARM_UP_RUNS = 3
GNU_TIME = shutil.which("time", path="/usr/bin")


@dataclass
class Sample:
    median_ms: float
    p90_ms: float
    peak_rss_mb: float | None


def run_once(argv: list[str], env: Mapping[str, str]) -> float:
    """Wall time (ms) of one run; fails loudly if the command fails."""
    started = time.perf_counter()
    proc = subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    elapsed_ms = (time.perf_counter() - started) * 1000
    if proc.returncode != 0:
        raise RuntimeError(f"{argv} exited {proc.returncode}: {proc.stderr.decode()}")
    return elapsed_ms


def peak_rss_mb(argv: list[str], env: Mapping[str, str], runs: int) -> float | None:
    if GNU_TIME is None:
        return None
    peaks = []
    for _ in range(runs):
        proc = subprocess.run(
            [GNU_TIME, "-f", "%M", *argv],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            check=True,
        )
        peaks.append(int(proc.stderr.strip().splitlines()[-1]) / 1024)  # %M is in KiB
    return max(peaks)


def measure(argv: list[str], env: Mapping[str, str], runs: int) -> Sample:
    for _ in range(WARM_UP_RUNS):
        run_once(argv, env)
    times = [run_once(argv, env) for _ in range(runs)]
    deciles = statistics.quantiles(times, n=10, method="inclusive")
    return Sample(statistics.median(times), deciles[8], peak_rss_mb(argv, env, 5))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=20)
    runs = parser.parse_args().runs
    with tempfile.TemporaryDirectory() as tmp, dockerkit.local_test_images(Path(tmp)) as images:
        dockerkit.remove_managed_objects()
        agent = AgentProcess(Path(tmp) / "agent", interval_ms=30000, LOG_LEVEL="info").start()
        try:
            services = [svc(i + 1, f"s{i}", images.v1) for i in range(3)]
            agent.set_target(target(app(1001, *services)))
            for i in range(3):
                agent.wait_status(1001, f"s{i}", "Running")
            env = {k: v for k, v in agent.env.items() if k != "PYTHONDONTWRITEBYTECODE"}
            env["DEVICE_API_URL"] = agent.url
            results = {
                "baseline: python -c pass": measure([sys.executable, "-c", "pass"], env, runs),
                "iotctl status": measure([str(IOTCTL), "status"], env, runs),
                "iotctl apps list --json": measure(
                    [str(IOTCTL), "apps", "list", "--json"], env, runs
                ),
            }
        finally:
            agent.stop()
            dockerkit.remove_managed_objects()

    baseline = results["baseline: python -c pass"].median_ms
    print(f"runs: {runs} (after {WARM_UP_RUNS} warm-up runs each)")
    print(f"{'command':<28} {'median':>9} {'p90':>9} {'vs baseline':>12} {'peak RSS':>9}")
    for name, s in results.items():
        ratio = s.median_ms / baseline
        rss = "n/a" if s.peak_rss_mb is None else f"{s.peak_rss_mb:.1f} MB"
        print(f"{name:<28} {s.median_ms:>6.1f} ms {s.p90_ms:>6.1f} ms {ratio:>11.1f}x {rss:>9}")


if __name__ == "__main__":
    main()

"""Time a full system metrics collection, against a same-run baseline, and its memory.

Run: .venv/bin/python bench/bench_metrics.py
The baseline is the bare `psutil.cpu_percent(); psutil.virtual_memory()` pair (the least any
metrics code does), timed in the same run so that the ratio stays meaningful on a noisy
machine. The memory figure is the RSS growth of a fresh interpreter importing the telemetry
package and creating a collector (psutil included), then collecting once.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROUNDS = 200

RSS_PROBE = """
import sys
from pathlib import Path

def rss_kb():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])

if sys.argv[2] == "agent":  # what a running agent has loaded already (stdlib)
    import dataclasses, logging, pathlib, shutil, socket, subprocess, threading, typing
before = rss_kb()
from iotistic_agent.telemetry import MetricsCollector
imported = rss_kb()
collector = MetricsCollector(Path(sys.argv[1]))
created = rss_kb()
collector.collect()
collector.collect()
collected = rss_kb()
print(before, imported, created, collected)
"""


def timed(fn: Callable[[], object], rounds: int = ROUNDS) -> list[float]:
    fn()  # warm: caches, imports, the first rate baseline
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    return samples


def p(samples: list[float], q: float) -> float:
    return statistics.quantiles(samples, n=100, method="inclusive")[int(q) - 1]


def main() -> None:
    import psutil
    from iotistic_agent.telemetry import MetricsCollector

    data_dir = Path(tempfile.gettempdir())
    collector = MetricsCollector(data_dir)

    def baseline() -> None:
        psutil.cpu_percent()
        psutil.virtual_memory()

    def naive_top() -> None:
        attrs = ["name", "cpu_percent", "memory_percent"]
        rows = [p.info for p in psutil.process_iter(attrs)]
        rows.sort(key=lambda i: (i["cpu_percent"] or 0, i["memory_percent"] or 0), reverse=True)

    runs = {
        "baseline: cpu_percent() + virtual_memory()": timed(baseline),
        "naive top 10: process_iter(name, cpu_percent, memory_percent) + sort": timed(naive_top),
        "full collection, top processes": timed(lambda: collector.collect(top_processes=True)),
        "full collection, no processes": timed(lambda: collector.collect(top_processes=False)),
    }
    base = statistics.median(runs["baseline: cpu_percent() + virtual_memory()"])
    processes = sum(1 for _ in psutil.process_iter())
    print(f"{ROUNDS} rounds, {psutil.cpu_count()} cores, {processes} processes")
    print("| measurement | p50 | p99 | p50 ratio to baseline |")
    print("|---|---|---|---|")
    for name, samples in runs.items():
        median = statistics.median(samples)
        print(f"| {name} | {median:.3f} ms | {p(samples, 99):.3f} ms | {median / base:.1f}x |")

    m = collector.collect()
    slowest = sorted(m.timings.items(), key=lambda kv: -kv[1])[:3]
    print("slowest metrics:", ", ".join(f"{k} {v:.2f} ms" for k, v in slowest))

    for mode in ("bare", "agent"):
        out = subprocess.run(
            [sys.executable, "-c", RSS_PROBE, str(data_dir), mode],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
        ).stdout.split()
        before, imported, created, collected = (int(v) / 1024 for v in out)
        print(
            f"RSS ({mode} interpreter, {before:.1f} MB): +{imported - before:.1f} MB importing "
            f"the package; +{created - imported:.1f} MB creating the collector (psutil); "
            f"+{collected - created:.1f} MB after two collections; "
            f"total +{collected - before:.1f} MB"
        )


if __name__ == "__main__":
    main()

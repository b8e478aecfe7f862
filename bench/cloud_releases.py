"""Run a cloud benchmark against an earlier release and this checkout, in the same run.

``--before`` names the earlier release's ``iotistic-cloud`` (bench/README.md shows how to
install one beside this checkout); each release gets its own data directory, its server
pinned to CPU 0 and the load generator to CPU 1, so the figures are "one core of cloud".
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.cloud_process import CLOUD, CloudProcess  # noqa: E402

Measure = Callable[[CloudProcess, argparse.Namespace], Awaitable[list[str]]]


def cpu_seconds(pid: int) -> float:
    """The process's user and system CPU time so far (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> tuple[float, float]:
    """The process's resident memory now and at its peak (VmRSS, VmHWM), in MB."""
    status = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
    )
    return int(status["VmRSS"].split()[0]) / 1024, int(status["VmHWM"].split()[0]) / 1024


def parser(description: str) -> argparse.ArgumentParser:
    result = argparse.ArgumentParser(description=description)
    result.add_argument("--before", type=Path, help="iotistic-cloud of the earlier release")
    return result


def run_releases(measure: Measure, args: argparse.Namespace, **env: str) -> None:
    """``measure`` on the earlier release (when given), then on this checkout."""
    if len(os.sched_getaffinity(0)) < 2:
        sys.exit("needs two CPUs: one for the cloud, one for the load")
    os.sched_setaffinity(0, {1})
    releases = [("after", CLOUD)]
    if args.before is not None:
        releases.insert(0, ("before", args.before))
    with tempfile.TemporaryDirectory(prefix="bench-cloud-") as work:
        for name, executable in releases:
            cloud = CloudProcess(Path(work) / name, executable=executable, **env).start()
            assert cloud.proc is not None
            os.sched_setaffinity(cloud.proc.pid, {0})
            try:
                lines = asyncio.run(measure(cloud, args))
            finally:
                cloud.stop()
            print(f"\n== {name} ({executable}) ==")
            for line in lines:
                print(line)

"""System metrics collector (psutil, imported on first use).

Every metric is collected on its own through `_safe`: an exception yields the spec's fallback
value (0, None, [], "unknown", ...), is counted, and is logged once when the metric starts
failing (again after it recovered), never once per sample and never raised. Each metric's time
is recorded; one slower than SLOW_MS is logged.

Rates (CPU usage, per-process CPU, disk I/O) are deltas against the previous collection, so no
call blocks to sample: the collector takes its first baseline when it is created. CPU figures
are percent of the whole machine (all cores together = 100) on every platform: psutil's
per-process figure, per core on Linux (400 % on four busy cores), is divided by the core count.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar

from .model import (
    CpuThrottling,
    DiskIo,
    ExtendedMetrics,
    MemoryInfo,
    NetworkInterface,
    ProcessInfo,
    StorageInfo,
    SystemMetrics,
)

log = logging.getLogger(__name__)

T = TypeVar("T")

SLOW_MS = 500.0
INTERFACES_TTL_S = 30.0
TOP_PROCESSES = 10
THROTTLED_PATH = Path("/sys/devices/platform/soc/soc:firmware/get_throttled")
UNDERVOLTAGE_NOW = 0x1  # get_throttled bit 0: under-voltage detected (now)
# Sensor names of psutil.sensors_temperatures() that are the CPU, most specific first.
CPU_SENSORS = (
    *("cpu_thermal", "cpu-thermal", "coretemp", "k10temp", "zenpower", "soc_thermal"),
    *("cpu", "acpitz"),
)

FALLBACK_MEMORY = MemoryInfo(used=0, total=0, percent=0.0)
FALLBACK_STORAGE = StorageInfo(used=None, total=None, percent=None)


def default_collect_top_processes() -> bool:
    """The spec's default: on, except on Windows where listing processes is slow."""
    return not sys.platform.startswith("win")


def _psutil() -> ModuleType:
    import psutil  # imported on first use: the agent does not need it to start

    return psutil


class MetricsCollector:
    def __init__(
        self,
        data_dir: Path,
        *,
        collect_top_processes: bool | None = None,
        clock: Callable[[], float] = time.monotonic,
        throttled_path: Path = THROTTLED_PATH,
    ) -> None:
        self.data_dir = data_dir
        self.collect_top_processes = (
            default_collect_top_processes()
            if collect_top_processes is None
            else collect_top_processes
        )
        self._clock = clock
        self._throttled_path = throttled_path
        self._lock = threading.Lock()
        self._psutil = _psutil()
        # Static values, cached after the first success (a fallback is not cached).
        self._hostname: str | None = None
        self._cores: int | None = None
        self._interfaces: tuple[NetworkInterface, ...] | None = None
        self._interfaces_at = 0.0
        self._throttled_source: str | None = None  # "sysfs", "vcgencmd", "none"
        # Failure bookkeeping: metrics failing now (logged once) and total failures.
        self._failing: set[str] = set()
        self.failures: dict[str, int] = {}
        # Baselines for the rates (taken now, so the first collection has real figures).
        self._cpu_times: Any = None
        self._disk: Any = None
        self._disk_at = 0.0
        self._proc_at: float | None = None
        self._proc_cpu: dict[Any, float] = {}  # Process -> CPU seconds at the previous pass
        self._total_memory: int | None = None
        try:
            self._cpu_times = self._psutil.cpu_times()
            self._disk = self._psutil.disk_io_counters(perdisk=False)
            self._disk_at = self._clock()
        except Exception:  # the collection reports it
            pass

    # --- the safe executor ---------------------------------------------------------------

    def _safe(
        self,
        name: str,
        fn: Callable[[], T],
        fallback: T,
        timings: dict[str, float],
        failed: list[str],
    ) -> T:
        start = time.perf_counter()
        try:
            value = fn()
        except Exception as exc:
            value = fallback
            failed.append(name)
            self.failures[name] = self.failures.get(name, 0) + 1
            if name not in self._failing:
                self._failing.add(name)
                log.warning(
                    "metric %s unavailable, reporting %r: %s: %s",
                    name,
                    fallback,
                    type(exc).__name__,
                    exc,
                )
        else:
            if name in self._failing:
                self._failing.discard(name)
                log.info("metric %s available again", name)
        elapsed = (time.perf_counter() - start) * 1000
        timings[name] = elapsed
        if elapsed > SLOW_MS:
            log.warning("metric %s took %.0f ms", name, elapsed)
        return value

    # --- the collection ------------------------------------------------------------------

    def collect(self, *, top_processes: bool | None = None) -> SystemMetrics:
        with_processes = self.collect_top_processes if top_processes is None else top_processes
        timings: dict[str, float] = {}
        failed: list[str] = []
        with self._lock:
            safe = self._safe
            cores = safe("cpuCores", self._cpu_cores, 1, timings, failed)
            processes: tuple[ProcessInfo, ...] = ()
            if with_processes:
                processes = safe(
                    "topProcesses", lambda: self._top_processes(cores), (), timings, failed
                )
            metrics = SystemMetrics(
                cpu_usage=safe("cpuUsage", self._cpu_usage, 0.0, timings, failed),
                cpu_temp=safe("cpuTemp", self._cpu_temp, None, timings, failed),
                cpu_cores=cores,
                memory=safe("memoryInfo", self._memory, FALLBACK_MEMORY, timings, failed),
                storage=safe("storageInfo", self._storage, FALLBACK_STORAGE, timings, failed),
                uptime=safe("uptime", self._uptime, 0, timings, failed),
                hostname=safe("hostname", self._host, "unknown", timings, failed),
                undervolted=safe("undervolted", self._undervolted, False, timings, failed),
                network_interfaces=safe(
                    "networkInterfaces", self._network_interfaces, (), timings, failed
                ),
                top_processes=processes,
                extended=ExtendedMetrics(
                    load_average=safe("loadAverage", self._load_average, None, timings, failed),
                    disk_io=safe("diskIo", self._disk_io, None, timings, failed),
                    cpu_throttling=safe(
                        "cpuThrottling", self._cpu_throttling, None, timings, failed
                    ),
                ),
                collected_at=time.time(),
                timings=timings,
                failed=tuple(failed),
            )
        return metrics

    # --- one function per metric (each may raise: _safe catches) -------------------------

    def _cpu_cores(self) -> int:
        if self._cores is None:
            cores = self._psutil.cpu_count(logical=True) or os.cpu_count()
            if not cores:
                raise RuntimeError("the core count is unknown")
            self._cores = int(cores)
        return self._cores

    def _cpu_usage(self) -> float:
        """Busy share of all cores since the previous collection (non-blocking)."""
        now = self._psutil.cpu_times()
        before, self._cpu_times = self._cpu_times, now
        if before is None:
            return 0.0
        total = float(sum(now) - sum(before))
        idle = float(now.idle - before.idle) + float(
            getattr(now, "iowait", 0.0) - getattr(before, "iowait", 0.0)
        )
        if total <= 0:
            return 0.0
        return round(min(100.0, max(0.0, (total - idle) / total * 100)), 1)

    def _cpu_temp(self) -> float | None:
        read = getattr(self._psutil, "sensors_temperatures", None)
        if read is None:  # not on this platform: not a failure
            return None
        sensors = read()
        for name in (*CPU_SENSORS, *sensors):
            for entry in sensors.get(name, ()):
                if entry.current is not None and entry.current > 0:
                    return round(float(entry.current), 1)
        return None

    def _memory(self) -> MemoryInfo:
        memory = self._psutil.virtual_memory()
        # used = total - available: what the applications hold (psutil's `used` leaves out
        # buffers and caches differently per platform).
        used = int(memory.total - memory.available)
        return MemoryInfo(used=used, total=int(memory.total), percent=float(memory.percent))

    def _storage(self) -> StorageInfo:
        disk = self._psutil.disk_usage(str(self.data_dir))
        return StorageInfo(used=int(disk.used), total=int(disk.total), percent=float(disk.percent))

    def _uptime(self) -> int:
        return max(0, int(time.time() - self._psutil.boot_time()))

    def _host(self) -> str:
        if self._hostname is None:
            name = socket.gethostname()
            if not name:
                raise RuntimeError("empty hostname")
            self._hostname = name
        return self._hostname

    def _undervolted(self) -> bool:
        """Raspberry Pi firmware flag; elsewhere (no source) simply False."""
        if self._throttled_source is None:
            if os.access(self._throttled_path, os.R_OK):
                self._throttled_source = "sysfs"
            elif shutil.which("vcgencmd") is not None:
                self._throttled_source = "vcgencmd"
            else:
                self._throttled_source = "none"
        if self._throttled_source == "sysfs":
            text = self._throttled_path.read_text(encoding="ascii").strip()
        elif self._throttled_source == "vcgencmd":
            out = subprocess.run(
                ["vcgencmd", "get_throttled"],
                capture_output=True,
                text=True,
                timeout=2,
                check=True,
            ).stdout
            text = out.strip().partition("=")[2] or out.strip()  # "throttled=0x50000"
        else:
            return False
        return bool(int(text, 16) & UNDERVOLTAGE_NOW)

    def _network_interfaces(self) -> tuple[NetworkInterface, ...]:
        now = self._clock()
        if self._interfaces is not None and now - self._interfaces_at < INTERFACES_TTL_S:
            return self._interfaces
        families = (socket.AF_INET, socket.AF_INET6)
        addrs = self._psutil.net_if_addrs()
        stats = self._psutil.net_if_stats()
        interfaces = []
        for name in sorted(addrs.keys() | stats.keys()):
            stat = stats.get(name)
            interfaces.append(
                NetworkInterface(
                    name=name,
                    addresses=tuple(a.address for a in addrs.get(name, ()) if a.family in families),
                    up=bool(stat.isup) if stat is not None else False,
                    speed=(stat.speed or None) if stat is not None else None,
                )
            )
        self._interfaces = tuple(interfaces)
        self._interfaces_at = now
        return self._interfaces

    def _top_processes(self, cores: int) -> tuple[ProcessInfo, ...]:
        """The ten busiest processes, by CPU since the previous collection, then memory.

        One pass reads each process's CPU times and RSS (one /proc read each on Linux, in a
        oneshot); the CPU share is this collector's own delta against the previous pass, in
        percent of the whole machine (0 for a process seen the first time). Only the ten
        winners' names are read. process_iter keeps its Process objects between calls, and a
        Process hashes on (pid, start time), so a reused pid is a new process here."""
        psutil = self._psutil
        now = self._clock()
        elapsed = now - self._proc_at if self._proc_at is not None else 0.0
        capacity = elapsed * cores
        if self._total_memory is None:
            self._total_memory = int(psutil.virtual_memory().total)
        total = self._total_memory
        previous = self._proc_cpu
        current: dict[Any, float] = {}
        scored: list[tuple[float, float, Any]] = []
        append = scored.append
        for proc in psutil.process_iter(["cpu_times", "memory_info"]):
            info = proc.info
            times = info["cpu_times"]
            memory = info["memory_info"]
            if times is None and memory is None:  # access denied to both
                continue
            cpu = 0.0
            if times is not None:
                spent = times.user + times.system
                current[proc] = spent
                before = previous.get(proc)
                if before is not None and capacity > 0:
                    cpu = min(100.0, max(0.0, spent - before) / capacity * 100)
            append((cpu, memory.rss / total * 100 if memory is not None and total else 0.0, proc))
        self._proc_cpu, self._proc_at = current, now
        scored.sort(key=lambda row: (row[0], row[1]), reverse=True)
        top: list[ProcessInfo] = []
        for cpu, memory, proc in scored:
            try:
                name = proc.name()
            except psutil.NoSuchProcess:  # exited since: the next one takes its place
                continue
            except psutil.Error:
                name = ""
            top.append(
                ProcessInfo(pid=proc.pid, name=name, cpu=round(cpu, 1), memory=round(memory, 1))
            )
            if len(top) == TOP_PROCESSES:
                break
        return tuple(top)

    def _load_average(self) -> tuple[float, float, float] | None:
        if not hasattr(os, "getloadavg"):
            return None
        one, five, fifteen = os.getloadavg()
        return (round(one, 2), round(five, 2), round(fifteen, 2))

    def _disk_io(self) -> DiskIo | None:
        now = self._psutil.disk_io_counters(perdisk=False)
        at = self._clock()
        before, before_at = self._disk, self._disk_at
        self._disk, self._disk_at = now, at
        if now is None:  # no disks psutil can see
            return None
        elapsed = at - before_at
        if before is None or elapsed <= 0:
            return DiskIo(read=0.0, write=0.0, read_bytes=0.0, write_bytes=0.0)

        def rate(field: str) -> float:
            return round(
                max(0, int(getattr(now, field)) - int(getattr(before, field))) / elapsed, 1
            )

        return DiskIo(
            read=rate("read_count"),
            write=rate("write_count"),
            read_bytes=rate("read_bytes"),
            write_bytes=rate("write_bytes"),
        )

    def _cpu_throttling(self) -> CpuThrottling | None:
        freq = self._psutil.cpu_freq()
        if freq is None or not freq.max:
            return None  # no cpufreq (VMs, containers): unavailable, not failing
        return CpuThrottling(current_freq=round(freq.current, 1), max_freq=round(freq.max, 1))

"""Prometheus text exposition (format 0.0.4) of one collection.

Every family has its `# HELP` and `# TYPE` lines and the `iotistic_` prefix; a metric that
fell back to "unknown" (None) is left out rather than reported as 0. Label values are escaped
(backslash, double quote, newline) as the format requires."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

from .model import SystemMetrics

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
PREFIX = "iotistic_"

Sample = tuple[Mapping[str, str], float]


def escape_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _number(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if float(value).is_integer() and abs(value) < 2**53:
        return str(int(value))
    return repr(float(value))


class _Exposition:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def family(self, name: str, kind: str, help_text: str, samples: Iterable[Sample]) -> None:
        rows = list(samples)
        if not rows:
            return
        full = PREFIX + name
        self.lines.append(f"# HELP {full} {escape_help(help_text)}")
        self.lines.append(f"# TYPE {full} {kind}")
        for labels, value in rows:
            if labels:
                inner = ",".join(f'{k}="{escape_label(v)}"' for k, v in labels.items())
                self.lines.append(f"{full}{{{inner}}} {_number(value)}")
            else:
                self.lines.append(f"{full} {_number(value)}")

    def gauge(self, name: str, help_text: str, value: float | None) -> None:
        self.family(name, "gauge", help_text, [] if value is None else [({}, value)])


def prometheus_text(metrics: SystemMetrics, failures: Mapping[str, int] | None = None) -> str:
    """The collection as exposition text; `failures` (the collector's counts) becomes the
    `iotistic_metric_failures_total` counter."""
    out = _Exposition()
    m = metrics
    out.family(
        "device_info", "gauge", "Device identity (always 1).", [({"hostname": m.hostname}, 1)]
    )
    out.gauge(
        "cpu_usage_percent", "CPU busy share of the whole machine (all cores = 100).", m.cpu_usage
    )
    out.gauge("cpu_temperature_celsius", "CPU temperature.", m.cpu_temp)
    out.gauge("cpu_cores", "Logical CPU cores.", m.cpu_cores)
    out.gauge("memory_used_bytes", "Memory in use (total minus available).", m.memory.used)
    out.gauge("memory_total_bytes", "Physical memory.", m.memory.total)
    out.gauge("memory_usage_percent", "Memory in use, percent.", m.memory.percent)
    out.gauge(
        "storage_used_bytes", "Used bytes of the data directory's file system.", m.storage.used
    )
    out.gauge("storage_total_bytes", "Size of the data directory's file system.", m.storage.total)
    out.gauge(
        "storage_usage_percent",
        "Used share of the data directory's file system.",
        m.storage.percent,
    )
    out.gauge("uptime_seconds", "Seconds since the system booted.", m.uptime)
    out.gauge(
        "undervoltage",
        "1 while the Raspberry Pi firmware reports under-voltage.",
        int(m.undervolted),
    )
    out.family(
        "network_interface_up",
        "gauge",
        "1 when the network interface is up.",
        [({"interface": i.name}, int(i.up)) for i in m.network_interfaces],
    )
    out.family(
        "network_interface_speed_mbps",
        "gauge",
        "Link speed of the network interface, when the driver reports it.",
        [({"interface": i.name}, i.speed) for i in m.network_interfaces if i.speed is not None],
    )
    out.family(
        "process_cpu_percent",
        "gauge",
        "CPU of a top process, percent of the whole machine.",
        [({"pid": str(p.pid), "name": p.name}, p.cpu) for p in m.top_processes],
    )
    out.family(
        "process_memory_percent",
        "gauge",
        "Memory of a top process, percent of physical memory.",
        [({"pid": str(p.pid), "name": p.name}, p.memory) for p in m.top_processes],
    )
    ext = m.extended
    if ext.load_average is not None:
        out.family(
            "load_average",
            "gauge",
            "System load average.",
            [
                ({"period": p}, v)
                for p, v in zip(("1m", "5m", "15m"), ext.load_average, strict=True)
            ],
        )
    if ext.disk_io is not None:
        io = ext.disk_io
        out.gauge("disk_reads_per_second", "Disk read operations per second.", io.read)
        out.gauge("disk_writes_per_second", "Disk write operations per second.", io.write)
        out.gauge("disk_read_bytes_per_second", "Bytes read from disk per second.", io.read_bytes)
        out.gauge(
            "disk_written_bytes_per_second", "Bytes written to disk per second.", io.write_bytes
        )
    if ext.cpu_throttling is not None:
        out.family(
            "cpu_frequency_mhz",
            "gauge",
            "CPU frequency: current and maximum (current below max: throttled).",
            [
                ({"kind": "current"}, ext.cpu_throttling.current_freq),
                ({"kind": "max"}, ext.cpu_throttling.max_freq),
            ],
        )
    out.family(
        "metric_collection_seconds",
        "gauge",
        "Time the last collection spent on each metric.",
        [({"metric": k}, v / 1000) for k, v in sorted(m.timings.items())],
    )
    if failures is not None:
        out.family(
            "metric_failures_total",
            "counter",
            "Collections in which the metric failed and its fallback was reported.",
            [({"metric": k}, v) for k, v in sorted(failures.items())],
        )
    return "\n".join(out.lines) + "\n"

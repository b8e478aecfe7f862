"""The typed result of one collection; `as_dict()` is the camelCase JSON of the API."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class MemoryInfo:
    used: int
    total: int
    percent: float

    def as_dict(self) -> dict[str, Any]:
        return {"used": self.used, "total": self.total, "percent": self.percent}


@dataclass(frozen=True, slots=True)
class StorageInfo:
    """Of the file system holding the agent's data directory; None when it cannot be read."""

    used: int | None
    total: int | None
    percent: float | None

    def as_dict(self) -> dict[str, Any]:
        return {"used": self.used, "total": self.total, "percent": self.percent}


@dataclass(frozen=True, slots=True)
class NetworkInterface:
    name: str
    addresses: tuple[str, ...]
    up: bool
    speed: int | None  # Mbit/s; None when the driver does not say (0 from psutil)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "addresses": list(self.addresses),
            "up": self.up,
            "speed": self.speed,
        }


@dataclass(frozen=True, slots=True)
class ProcessInfo:
    pid: int
    name: str
    cpu: float  # percent of the whole machine (all cores = 100), on every platform
    memory: float  # percent of physical memory

    def as_dict(self) -> dict[str, Any]:
        return {"pid": self.pid, "name": self.name, "cpu": self.cpu, "memory": self.memory}


@dataclass(frozen=True, slots=True)
class DiskIo:
    """Rates since the previous collection (per second)."""

    read: float  # read operations
    write: float  # write operations
    read_bytes: float
    write_bytes: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "read": self.read,
            "write": self.write,
            "readBytes": self.read_bytes,
            "writeBytes": self.write_bytes,
        }


@dataclass(frozen=True, slots=True)
class CpuThrottling:
    current_freq: float  # MHz
    max_freq: float  # MHz

    def as_dict(self) -> dict[str, Any]:
        return {"currentFreq": self.current_freq, "maxFreq": self.max_freq}


@dataclass(frozen=True, slots=True)
class ExtendedMetrics:
    """Optional, platform-dependent figures: None (omitted from JSON as null) when unavailable."""

    load_average: tuple[float, float, float] | None = None
    disk_io: DiskIo | None = None
    cpu_throttling: CpuThrottling | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "loadAverage": list(self.load_average) if self.load_average is not None else None,
            "diskIo": self.disk_io.as_dict() if self.disk_io is not None else None,
            "cpuThrottling": (
                self.cpu_throttling.as_dict() if self.cpu_throttling is not None else None
            ),
        }


@dataclass(frozen=True, slots=True)
class SystemMetrics:
    cpu_usage: float  # percent of the whole machine
    cpu_temp: float | None  # degrees Celsius
    cpu_cores: int
    memory: MemoryInfo
    storage: StorageInfo
    uptime: int  # seconds
    hostname: str
    undervolted: bool
    network_interfaces: tuple[NetworkInterface, ...]
    top_processes: tuple[ProcessInfo, ...]
    extended: ExtendedMetrics
    collected_at: float  # Unix time
    # Milliseconds each metric took, and the metrics that fell back this time.
    timings: dict[str, float] = field(default_factory=dict)
    failed: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {
            "cpuUsage": self.cpu_usage,
            "cpuTemp": self.cpu_temp,
            "cpuCores": self.cpu_cores,
            "memoryInfo": self.memory.as_dict(),
            "storageInfo": self.storage.as_dict(),
            "uptime": self.uptime,
            "hostname": self.hostname,
            "undervolted": self.undervolted,
            "networkInterfaces": [i.as_dict() for i in self.network_interfaces],
            "topProcesses": [p.as_dict() for p in self.top_processes],
            "extended": self.extended.as_dict(),
            "collectedAt": self.collected_at,
            "timingsMs": dict(self.timings),
            "failed": list(self.failed),
        }

"""System metrics: the collector, its typed result and the Prometheus text exposition.

psutil is imported by the collector on first use, not by importing this package."""

from .collector import MetricsCollector, default_collect_top_processes
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
from .prometheus import CONTENT_TYPE, prometheus_text

__all__ = [
    "CONTENT_TYPE",
    "CpuThrottling",
    "DiskIo",
    "ExtendedMetrics",
    "MemoryInfo",
    "MetricsCollector",
    "NetworkInterface",
    "ProcessInfo",
    "StorageInfo",
    "SystemMetrics",
    "default_collect_top_processes",
    "prometheus_text",
]

"""The system metrics collector: every metric present with sane types, fallbacks logged once,
caching, timings, and the undervoltage sources."""

from __future__ import annotations

import json
import logging
from collections import namedtuple
from pathlib import Path
from typing import Any

import psutil
import pytest
from iotistic_agent.telemetry import MetricsCollector, SystemMetrics
from iotistic_agent.telemetry import collector as collector_module

METRICS = {
    "cpuUsage",
    "cpuTemp",
    "cpuCores",
    "memoryInfo",
    "storageInfo",
    "uptime",
    "hostname",
    "undervolted",
    "networkInterfaces",
    "topProcesses",
    "loadAverage",
    "diskIo",
    "cpuThrottling",
}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def collector(tmp_path: Path, clock: Clock) -> MetricsCollector:
    return MetricsCollector(
        tmp_path, collect_top_processes=True, clock=clock, throttled_path=tmp_path / "absent"
    )


def test_every_metric_is_present_with_sane_types(collector: MetricsCollector) -> None:
    collector.collect()
    m = collector.collect()
    assert m.failed == ()
    assert 0.0 <= m.cpu_usage <= 100.0
    assert m.cpu_temp is None or isinstance(m.cpu_temp, float)
    assert isinstance(m.cpu_cores, int) and m.cpu_cores >= 1
    assert 0 < m.memory.used <= m.memory.total and 0 <= m.memory.percent <= 100
    assert m.storage.used is not None and m.storage.total is not None
    assert 0 < m.storage.used <= m.storage.total
    assert m.storage.percent is not None and 0 <= m.storage.percent <= 100
    assert isinstance(m.uptime, int) and m.uptime > 0
    assert isinstance(m.hostname, str) and m.hostname not in ("", "unknown")
    assert m.undervolted is False
    assert any(i.name for i in m.network_interfaces)
    assert all(isinstance(i.up, bool) for i in m.network_interfaces)
    assert any("127.0.0.1" in i.addresses for i in m.network_interfaces)
    assert 1 <= len(m.top_processes) <= 10
    for p in m.top_processes:
        assert p.pid > 0 and isinstance(p.name, str)
        assert 0.0 <= p.cpu <= 100.0 and 0.0 <= p.memory <= 100.0
    ranked = [(p.cpu, p.memory) for p in m.top_processes]
    assert ranked == sorted(ranked, reverse=True)
    load = m.extended.load_average
    assert load is not None and len(load) == 3 and all(v >= 0 for v in load)
    assert m.extended.disk_io is None or m.extended.disk_io.read >= 0
    assert set(m.timings) == METRICS
    assert all(isinstance(v, float) and v >= 0 for v in m.timings.values())


def test_as_dict_is_camel_case_json(collector: MetricsCollector) -> None:
    body = json.loads(json.dumps(collector.collect().as_dict()))
    assert set(body) == {
        "cpuUsage",
        "cpuTemp",
        "cpuCores",
        "memoryInfo",
        "storageInfo",
        "uptime",
        "hostname",
        "undervolted",
        "networkInterfaces",
        "topProcesses",
        "extended",
        "collectedAt",
        "timingsMs",
        "failed",
    }
    assert set(body["memoryInfo"]) == {"used", "total", "percent"}
    assert set(body["extended"]) == {"loadAverage", "diskIo", "cpuThrottling"}
    assert set(body["topProcesses"][0]) == {"pid", "name", "cpu", "memory"}


def test_top_processes_can_be_switched_off(tmp_path: Path) -> None:
    collector = MetricsCollector(tmp_path, collect_top_processes=False)
    m = collector.collect()
    assert m.top_processes == () and "topProcesses" not in m.timings
    assert collector.collect(top_processes=True).top_processes != ()


def test_the_default_follows_the_platform(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(collector_module.sys, "platform", "win32")
    assert collector_module.default_collect_top_processes() is False
    monkeypatch.setattr(collector_module.sys, "platform", "linux")
    assert collector_module.default_collect_top_processes() is True


def _boom(*args: Any, **kwargs: Any) -> Any:
    raise PermissionError("denied")


USAGE = ("used", "total", "percent")

# (psutil function to break, the metric, the attribute path, its fallback)
FAILURES = [
    ("cpu_times", "cpuUsage", lambda m: m.cpu_usage, 0.0),
    ("sensors_temperatures", "cpuTemp", lambda m: m.cpu_temp, None),
    ("virtual_memory", "memoryInfo", lambda m: m.memory.as_dict(), dict.fromkeys(USAGE, 0)),
    ("disk_usage", "storageInfo", lambda m: m.storage.as_dict(), dict.fromkeys(USAGE)),
    ("boot_time", "uptime", lambda m: m.uptime, 0),
    ("net_if_addrs", "networkInterfaces", lambda m: m.network_interfaces, ()),
    ("process_iter", "topProcesses", lambda m: m.top_processes, ()),
    ("disk_io_counters", "diskIo", lambda m: m.extended.disk_io, None),
    ("cpu_freq", "cpuThrottling", lambda m: m.extended.cpu_throttling, None),
]  # fmt: skip


@pytest.mark.parametrize(("function", "metric", "read", "fallback"), FAILURES)
def test_a_failing_source_yields_its_fallback_and_is_logged_once(
    collector: MetricsCollector,
    clock: Clock,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    function: str,
    metric: str,
    read: Any,
    fallback: Any,
) -> None:
    collector.collect()
    monkeypatch.setattr(psutil, function, _boom)
    with caplog.at_level(logging.WARNING, logger=collector_module.__name__):
        results = []
        for _ in range(5):
            clock.now += 31  # past the interfaces' cache
            results.append(collector.collect())
    for m in results:
        assert read(m) == fallback
        assert m.failed == (metric,)
        assert set(m.timings) == METRICS  # the others were still collected
    warnings = [r for r in caplog.records if metric in r.getMessage()]
    assert len(warnings) == 1, [r.getMessage() for r in caplog.records]
    assert "PermissionError" in warnings[0].getMessage()
    assert collector.failures == {metric: 5}


def test_a_recovered_metric_is_logged_again_when_it_fails_again(
    collector: MetricsCollector, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    original = psutil.boot_time
    with caplog.at_level(logging.INFO, logger=collector_module.__name__):
        monkeypatch.setattr(psutil, "boot_time", _boom)
        collector.collect()
        collector.collect()
        monkeypatch.setattr(psutil, "boot_time", original)
        assert collector.collect().uptime > 0
        monkeypatch.setattr(psutil, "boot_time", _boom)
        collector.collect()
    messages = [r.getMessage() for r in caplog.records]
    assert sum("unavailable" in m for m in messages) == 2
    assert sum("available again" in m for m in messages) == 1


def test_hostname_and_cores_fall_back_and_are_not_cached_then(
    collector: MetricsCollector, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(collector_module.socket, "gethostname", _boom)
    monkeypatch.setattr(psutil, "cpu_count", _boom)
    monkeypatch.setattr(collector_module.os, "cpu_count", lambda: None)
    m = collector.collect(top_processes=False)  # psutil's process CPU needs cpu_count too
    assert (m.hostname, m.cpu_cores) == ("unknown", 1)
    assert set(m.failed) == {"hostname", "cpuCores"}
    monkeypatch.undo()
    m = collector.collect()
    assert m.hostname != "unknown" and m.cpu_cores >= 1 and m.failed == ()


def test_hostname_and_cores_are_read_once(
    collector: MetricsCollector, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = {"host": 0, "cores": 0}

    def hostname() -> str:
        calls["host"] += 1
        return "edge-1"

    def cpu_count(logical: bool = True) -> int:
        calls["cores"] += 1
        return 4

    monkeypatch.setattr(collector_module.socket, "gethostname", hostname)
    monkeypatch.setattr(psutil, "cpu_count", cpu_count)
    for _ in range(3):
        m = collector.collect(top_processes=False)  # psutil's process CPU calls cpu_count
    assert (m.hostname, m.cpu_cores) == ("edge-1", 4)
    assert calls == {"host": 1, "cores": 1}


def test_interfaces_are_cached_for_30_seconds(
    collector: MetricsCollector, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = 0
    original = psutil.net_if_addrs

    def counting() -> Any:
        nonlocal calls
        calls += 1
        return original()

    monkeypatch.setattr(psutil, "net_if_addrs", counting)
    first = collector.collect().network_interfaces
    clock.now += 29.9
    assert collector.collect().network_interfaces is first
    assert calls == 1
    clock.now += 0.2
    collector.collect()
    assert calls == 2


def test_process_cpu_is_percent_of_the_whole_machine(
    collector: MetricsCollector, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    Times = namedtuple("Times", "user system")
    Mem = namedtuple("Mem", "rss")

    class Proc:
        def __init__(self, pid: int) -> None:
            self.pid = pid
            self.spent = 0.0
            self.rss = 1000

        @property
        def info(self) -> dict[str, Any]:
            return {"cpu_times": Times(self.spent, 0.0), "memory_info": Mem(self.rss)}

        def name(self) -> str:
            if self.pid == 5:
                raise psutil.NoSuchProcess(5)
            return f"p{self.pid}"

    procs = [Proc(i) for i in range(1, 15)]
    busy = Proc(99)  # four cores fully busy (psutil on Linux: 400 %)
    busy.rss = 2000
    procs.append(busy)
    Vm = namedtuple("Vm", "total available percent")
    monkeypatch.setattr(psutil, "virtual_memory", lambda: Vm(100_000, 50_000, 50.0))
    monkeypatch.setattr(psutil, "process_iter", lambda attrs: iter(procs))
    monkeypatch.setattr(psutil, "cpu_count", lambda logical=True: 4)
    first = collector.collect().top_processes  # no previous pass: ranked by memory
    assert first[0].pid == 99 and all(p.cpu == 0.0 for p in first)
    clock.now += 2.0
    busy.spent = 8.0  # 4 cores for 2 s
    for proc in procs[:-1]:
        proc.spent = proc.pid * 0.1  # pid 14: 1.4 s of 8 core-seconds = 17.5 %
    top = collector.collect().top_processes
    assert len(top) == 10
    assert (top[0].pid, top[0].cpu, top[0].memory) == (99, 100.0, 2.0)
    assert (top[1].pid, top[1].cpu, top[1].name) == (14, 17.5, "p14")
    assert [p.pid for p in top] == [99, 14, 13, 12, 11, 10, 9, 8, 7, 6]
    clock.now += 2.0  # nothing spent since: 0 %, and pid 5 (gone) is skipped
    assert [p.pid for p in collector.collect().top_processes][:1] == [99]
    assert all(p.cpu == 0.0 for p in collector.collect().top_processes)


def test_cpu_usage_is_the_busy_share_since_the_previous_collection(
    collector: MetricsCollector, monkeypatch: pytest.MonkeyPatch
) -> None:
    Times = namedtuple("Times", "user system idle iowait")
    samples = iter([Times(10.0, 0.0, 90.0, 0.0), Times(40.0, 10.0, 140.0, 10.0)])
    monkeypatch.setattr(psutil, "cpu_times", lambda: next(samples))
    collector.collect()  # baseline
    # busy 40 of 100 seconds (idle and iowait are not busy), whatever the core count
    assert collector.collect().cpu_usage == 40.0


def test_disk_io_is_a_rate_between_two_samples(
    collector: MetricsCollector, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    Io = namedtuple("Io", "read_count write_count read_bytes write_bytes")
    samples = iter([Io(100, 200, 1000, 2000), Io(150, 300, 6000, 2000)])
    monkeypatch.setattr(psutil, "disk_io_counters", lambda perdisk=False: next(samples))
    collector.collect()
    clock.now += 10
    io = collector.collect().extended.disk_io
    assert io is not None
    assert io.as_dict() == {"read": 5.0, "write": 10.0, "readBytes": 500.0, "writeBytes": 0.0}


def test_cpu_throttling_reports_current_and_max_frequency(
    collector: MetricsCollector, monkeypatch: pytest.MonkeyPatch
) -> None:
    Freq = namedtuple("Freq", "current min max")
    monkeypatch.setattr(psutil, "cpu_freq", lambda: Freq(1800.0, 600.0, 2400.0))
    throttling = collector.collect().extended.cpu_throttling
    assert throttling is not None
    assert throttling.as_dict() == {"currentFreq": 1800.0, "maxFreq": 2400.0}
    monkeypatch.setattr(psutil, "cpu_freq", lambda: None)  # no cpufreq: unavailable, no failure
    m = collector.collect()
    assert m.extended.cpu_throttling is None and m.failed == ()


def test_cpu_temperature_prefers_the_cpu_sensor(
    collector: MetricsCollector, monkeypatch: pytest.MonkeyPatch
) -> None:
    Temp = namedtuple("Temp", "label current high critical")
    sensors = {"nvme": [Temp("", 35.0, None, None)], "cpu_thermal": [Temp("", 51.54, None, None)]}
    monkeypatch.setattr(psutil, "sensors_temperatures", lambda: sensors)
    assert collector.collect().cpu_temp == 51.5
    monkeypatch.setattr(psutil, "sensors_temperatures", lambda: {})
    assert collector.collect().cpu_temp is None


@pytest.mark.parametrize(
    ("content", "expected"), [("0x0\n", False), ("0x50005\n", True), ("0x50000", False)]
)
def test_undervoltage_from_the_firmware_file(tmp_path: Path, content: str, expected: bool) -> None:
    throttled = tmp_path / "get_throttled"
    throttled.write_text(content)
    collector = MetricsCollector(tmp_path, throttled_path=throttled)
    m = collector.collect()
    assert m.undervolted is expected and m.failed == ()


def test_undervoltage_from_vcgencmd_only_when_present(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    collector = MetricsCollector(tmp_path, throttled_path=tmp_path / "absent")
    monkeypatch.setattr(collector_module.shutil, "which", lambda name: "/usr/bin/vcgencmd")

    class Done:
        stdout = "throttled=0x1\n"

    monkeypatch.setattr(collector_module.subprocess, "run", lambda *a, **k: Done())
    assert collector.collect().undervolted is True
    monkeypatch.setattr(collector_module.subprocess, "run", _boom)
    m = collector.collect()
    assert m.undervolted is False and m.failed == ("undervolted",)


def test_an_unreadable_firmware_file_is_the_fallback(tmp_path: Path) -> None:
    throttled = tmp_path / "get_throttled"
    throttled.write_text("garbage")
    m = MetricsCollector(tmp_path, throttled_path=throttled).collect()
    assert m.undervolted is False and m.failed == ("undervolted",)


def test_a_missing_data_dir_is_the_storage_fallback(tmp_path: Path) -> None:
    m = MetricsCollector(tmp_path / "nope").collect(top_processes=False)
    assert m.storage.as_dict() == {"used": None, "total": None, "percent": None}
    assert m.failed == ("storageInfo",)


def test_slow_metrics_are_logged(
    collector: MetricsCollector, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    ticks = iter(range(0, 10_000_000, 1))  # each perf_counter call: one more second

    monkeypatch.setattr(collector_module.time, "perf_counter", lambda: float(next(ticks)))
    with caplog.at_level(logging.WARNING, logger=collector_module.__name__):
        m = collector.collect()
    assert all(v == 1000.0 for v in m.timings.values())
    slow = [r.getMessage() for r in caplog.records if "took" in r.getMessage()]
    assert len(slow) == len(METRICS)


def test_the_result_is_immutable(collector: MetricsCollector) -> None:
    m: SystemMetrics = collector.collect()
    with pytest.raises(AttributeError):
        m.cpu_usage = 1.0  # type: ignore[misc]


@pytest.mark.parametrize(
    ("value", "expected"), [("", None), ("true", True), ("false", False), ("0", False)]
)
def test_the_collect_top_processes_setting(value: str, expected: bool | None) -> None:
    from iotistic_agent.settings import AgentSettings

    assert (
        AgentSettings.from_env({"COLLECT_TOP_PROCESSES": value}).COLLECT_TOP_PROCESSES is expected
    )
    assert AgentSettings.from_env({}).COLLECT_TOP_PROCESSES is None

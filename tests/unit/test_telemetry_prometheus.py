"""Prometheus text exposition of the metrics, and the two Device API routes."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import schemathesis
from aiohttp.test_utils import TestServer
from api_support import KEY, api_context
from iotistic_agent.device_api.app import create_app
from iotistic_agent.engine.memory import MemoryEngine
from iotistic_agent.telemetry import (
    CONTENT_TYPE,
    ExtendedMetrics,
    MemoryInfo,
    MetricsCollector,
    NetworkInterface,
    ProcessInfo,
    StorageInfo,
    SystemMetrics,
    prometheus_text,
)

ROOT = Path(__file__).resolve().parents[2]

NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL_VALUE = r'"(?:[^"\\\n]|\\\\|\\"|\\n)*"'
LABELS = rf"\{{[a-zA-Z_][a-zA-Z0-9_]*={LABEL_VALUE}(?:,[a-zA-Z_][a-zA-Z0-9_]*={LABEL_VALUE})*\}}"
NUMBER = r"(?:[+-]?(?:\d+(?:\.\d*)?(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?)|NaN|[+-]Inf)"
SAMPLE = re.compile(rf"({NAME})({LABELS})? ({NUMBER})")
HELP = re.compile(rf"# HELP ({NAME}) .+")
TYPE = re.compile(rf"# TYPE ({NAME}) (gauge|counter|untyped|summary|histogram)")


def parse(text: str) -> dict[str, tuple[str, list[tuple[str, float]]]]:
    """A strict little parser: every family has HELP then TYPE, samples follow their TYPE,
    no family twice. Returns {family: (type, [(labels, value)])}."""
    assert text.endswith("\n")
    families: dict[str, tuple[str, list[tuple[str, float]]]] = {}
    helped: str | None = None
    current: str | None = None
    for line in text[:-1].split("\n"):
        if match := HELP.fullmatch(line):
            assert match.group(1) not in families, f"family {match.group(1)} twice"
            helped, current = match.group(1), None
        elif match := TYPE.fullmatch(line):
            assert match.group(1) == helped, f"TYPE without its HELP: {line}"
            current = match.group(1)
            families[current] = (match.group(2), [])
        elif match := SAMPLE.fullmatch(line):
            assert match.group(1) == current, f"sample outside its family: {line}"
            families[current][1].append((match.group(2) or "", float(match.group(3))))
        else:
            raise AssertionError(f"not a valid exposition line: {line!r}")
    return families


def sample_metrics(**changes: object) -> SystemMetrics:
    base: dict[str, object] = {
        "cpu_usage": 12.5,
        "cpu_temp": 48.3,
        "cpu_cores": 4,
        "memory": MemoryInfo(used=100, total=400, percent=25.0),
        "storage": StorageInfo(used=5, total=10, percent=50.0),
        "uptime": 3600,
        "hostname": 'pi "one"\\\nx',
        "undervolted": True,
        "network_interfaces": (NetworkInterface("eth0", ("10.0.0.2",), True, 1000),),
        "top_processes": (ProcessInfo(1, 'we"ird\\name\n', 25.0, 1.5),),
        "extended": ExtendedMetrics(load_average=(0.5, 0.8, 1.2)),
        "collected_at": 1.0,
        "timings": {"cpuUsage": 0.25},
    }
    base.update(changes)
    return SystemMetrics(**base)  # type: ignore[arg-type]


def test_a_real_collection_parses(tmp_path: Path) -> None:
    collector = MetricsCollector(tmp_path)
    collector.collect()
    families = parse(prometheus_text(collector.collect(), collector.failures))
    assert all(name.startswith("iotistic_") for name in families)
    for name in (
        "iotistic_cpu_usage_percent",
        "iotistic_cpu_cores",
        "iotistic_memory_used_bytes",
        "iotistic_storage_usage_percent",
        "iotistic_uptime_seconds",
        "iotistic_undervoltage",
        "iotistic_network_interface_up",
        "iotistic_process_cpu_percent",
        "iotistic_metric_collection_seconds",
    ):
        assert name in families, name


def test_labels_are_escaped_and_types_declared() -> None:
    text = prometheus_text(sample_metrics(), {"uptime": 3})
    families = parse(text)
    assert families["iotistic_device_info"][1] == [('{hostname="pi \\"one\\"\\\\\\nx"}', 1.0)]
    assert families["iotistic_process_cpu_percent"][1] == [
        ('{pid="1",name="we\\"ird\\\\name\\n"}', 25.0)
    ]
    assert families["iotistic_metric_failures_total"] == ("counter", [('{metric="uptime"}', 3.0)])
    assert families["iotistic_cpu_usage_percent"] == ("gauge", [("", 12.5)])
    assert families["iotistic_undervoltage"][1] == [("", 1.0)]
    assert families["iotistic_load_average"][1] == [
        ('{period="1m"}', 0.5),
        ('{period="5m"}', 0.8),
        ('{period="15m"}', 1.2),
    ]
    assert families["iotistic_network_interface_speed_mbps"][1] == [('{interface="eth0"}', 1000.0)]
    assert families["iotistic_metric_collection_seconds"][1] == [('{metric="cpuUsage"}', 0.00025)]


def test_unknown_figures_are_left_out_not_zero() -> None:
    metrics = sample_metrics(
        cpu_temp=None,
        storage=StorageInfo(None, None, None),
        extended=ExtendedMetrics(),
        top_processes=(),
    )
    families = parse(prometheus_text(metrics))
    for absent in (
        "iotistic_cpu_temperature_celsius",
        "iotistic_storage_used_bytes",
        "iotistic_load_average",
        "iotistic_disk_reads_per_second",
        "iotistic_cpu_frequency_mhz",
        "iotistic_process_cpu_percent",
        "iotistic_metric_failures_total",
    ):
        assert absent not in families


def test_the_parser_refuses_bad_lines() -> None:
    for bad in (
        "iotistic_x 1\n",  # no HELP/TYPE
        '# HELP iotistic_x h\n# TYPE iotistic_x gauge\niotistic_x{a="b"c"} 1\n',
        "# HELP iotistic_x h\n# TYPE iotistic_x gauge\niotistic_x one\n",
    ):
        with pytest.raises(AssertionError):
            parse(bad)


# --- the routes --------------------------------------------------------------------------


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(api_context(tmp_path, MemoryEngine()), api_key=KEY)
    async with TestServer(app, host="127.0.0.1") as server:
        headers = {"Authorization": f"Bearer {KEY}"}
        base = str(server.make_url(""))
        async with httpx.AsyncClient(base_url=base, headers=headers, timeout=10) as http:
            yield http


async def test_prometheus_route(client: httpx.AsyncClient) -> None:
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"] == CONTENT_TYPE
    families = parse(response.text)
    assert "iotistic_memory_total_bytes" in families


async def test_both_routes_need_the_key(client: httpx.AsyncClient) -> None:
    for path in ("/metrics", "/v1/metrics"):
        response = await client.get(path, headers={"Authorization": ""})
        assert response.status_code == 401


async def test_json_route_matches_the_document(client: httpx.AsyncClient) -> None:
    document = json.loads((ROOT / "docs" / "device-api.openapi.json").read_text())
    schema = schemathesis.openapi.from_dict(document)
    for _ in range(2):  # the second one has rates against the first
        response = await client.get("/v1/metrics")
        assert response.status_code == 200
        schema["/v1/metrics"]["GET"].validate_response(response)
    body = response.json()
    assert body["cpuCores"] >= 1 and body["hostname"] != "unknown"
    assert body["storageInfo"]["total"] > 0

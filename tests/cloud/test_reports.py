"""State reports: full, diff, duplicates, gzip, limits, history."""

from __future__ import annotations

import gzip
import json
from typing import Any

import httpx
import pytest
from iotistic_cloud.composition import Cloud
from iotistic_cloud.services.reports import ReportService
from iotistic_contracts.sync import FULL_REPORT_HEADER, MAX_REPORT_BYTES, DeviceReport
from sqlalchemy import text

from tests.cloud.device_kit import ADMIN, REPORT, SimDevice, provision, report

APP_1 = {"appId": 1, "appName": "one", "services": {}}
APP_2 = {"appId": 2, "appName": "two", "services": {}}


async def send(
    client: httpx.AsyncClient, device: SimDevice, body: Any, **headers: str
) -> httpx.Response:
    return await client.patch(REPORT, json=body, headers={**device.auth, **headers})


async def send_raw(
    client: httpx.AsyncClient, device: SimDevice, raw: bytes, encoding: str | None = None
) -> httpx.Response:
    headers = {**device.auth, "Content-Type": "application/json"}
    if encoding is not None:
        headers["Content-Encoding"] = encoding
    return await client.patch(REPORT, content=raw, headers=headers)


async def reported(client: httpx.AsyncClient, device: SimDevice) -> Any:
    shown = await client.get(f"/api/admin/v1/devices/{device.uuid}", headers=ADMIN)
    return shown.json()["reportedState"]


async def test_full_then_diffs(client: httpx.AsyncClient, key: str) -> None:
    device = await provision(client, key)
    full = report(device.uuid, 1, full=True, apps={"1": APP_1, "2": APP_2}, cpu_usage=10)
    answer = await send(client, device, full)
    assert answer.json() == {"status": "accepted", "sequence": 1}
    assert await reported(client, device) == {
        "reportedAt": "2026-11-25T12:00:00+00:00",
        "apps": {"1": APP_1, "2": APP_2},
        "cpu_usage": 10.0,
    }

    # A diff: changed fields only, an app removed with null, another one changed.
    app_1_v2 = {**APP_1, "appName": "one-renamed"}
    diff = report(device.uuid, 2, apps={"1": app_1_v2, "2": None}, temperature=51.5)
    assert (await send(client, device, diff)).json() == {"status": "accepted", "sequence": 2}
    assert await reported(client, device) == {
        "reportedAt": "2026-11-25T12:00:00+00:00",
        "apps": {"1": app_1_v2},
        "cpu_usage": 10.0,
        "temperature": 51.5,
    }

    # A new full report replaces everything, whatever came before.
    again = report(device.uuid, 3, full=True, apps={}, memory_usage=100)
    await send(client, device, again)
    assert await reported(client, device) == {
        "reportedAt": "2026-11-25T12:00:00+00:00",
        "apps": {},
        "memory_usage": 100.0,
    }


async def test_duplicate_diff_is_not_applied(client: httpx.AsyncClient, key: str) -> None:
    device = await provision(client, key)
    await send(client, device, report(device.uuid, 5, full=True, cpu_usage=1))
    for sequence in (5, 4):
        answer = await send(client, device, report(device.uuid, sequence, cpu_usage=99))
        assert answer.status_code == 200
        assert answer.json() == {"status": "duplicate", "sequence": sequence}
    assert (await reported(client, device))["cpu_usage"] == 1.0
    # A full report with a lower sequence is a restarted device: accepted.
    restart = await send(client, device, report(device.uuid, 0, full=True, cpu_usage=2))
    assert restart.json() == {"status": "accepted", "sequence": 0}
    assert (await reported(client, device))["cpu_usage"] == 2.0


async def test_gzip_report(client: httpx.AsyncClient, key: str) -> None:
    device = await provision(client, key)
    body = json.dumps(report(device.uuid, 1, full=True, uptime=12)).encode()
    answer = await send_raw(client, device, gzip.compress(body), "gzip")
    assert answer.json() == {"status": "accepted", "sequence": 1}
    assert (await reported(client, device))["uptime"] == 12.0


async def test_gzip_bomb_is_stopped(client: httpx.AsyncClient, key: str) -> None:
    device = await provision(client, key)
    # About 1 KiB on the wire, 20 MiB inflated: refused after MAX_REPORT_BYTES.
    bomb = gzip.compress(b" " * (20 * 1024 * 1024))
    assert len(bomb) < 64 * 1024
    answer = await send_raw(client, device, bomb, "gzip")
    assert answer.status_code == 413
    assert answer.json() == {
        "error": f"report is larger than {MAX_REPORT_BYTES} bytes once decompressed"
    }


async def test_broken_gzip_and_unknown_encoding(client: httpx.AsyncClient, key: str) -> None:
    device = await provision(client, key)
    whole = gzip.compress(json.dumps(report(device.uuid, 1, full=True)).encode())
    for raw in [b"not gzip at all", whole[:-10], whole + whole]:
        answer = await send_raw(client, device, raw, "gzip")
        assert answer.status_code == 400, raw
    answer = await send_raw(client, device, whole, "br")
    assert answer.status_code == 415
    assert answer.json() == {"error": "Content-Encoding 'br' is not supported (use gzip)"}


@pytest.mark.parametrize(
    ("content_type", "problem"),
    [
        (None, "is missing"),
        ("text/plain", "'text/plain' is not supported"),
        ("application/x-www-form-urlencoded", "'application/x-www-form-urlencoded' is not supported"),  # noqa: E501
        ("application/xml", "'application/xml' is not supported"),
    ],
)
async def test_a_report_must_say_it_is_json(
    client: httpx.AsyncClient, key: str, content_type: str | None, problem: str
) -> None:
    device = await provision(client, key)
    headers = dict(device.auth)
    if content_type is not None:
        headers["Content-Type"] = content_type
    body = json.dumps(report(device.uuid, 1, full=True)).encode()
    answer = await client.patch(REPORT, content=body, headers=headers)
    assert answer.status_code == 415
    assert answer.json() == {"error": f"Content-Type {problem} (use application/json)"}
    assert await reported(client, device) is None
    for accepted in ("application/json; charset=utf-8", "application/merge-patch+json"):
        headers["Content-Type"] = accepted
        answer = await client.patch(REPORT, content=body, headers=headers)
        assert answer.status_code == 200, answer.text


async def test_oversized_raw_body(client: httpx.AsyncClient, key: str) -> None:
    device = await provision(client, key)
    answer = await send_raw(client, device, b" " * (MAX_REPORT_BYTES + 1))
    assert answer.status_code == 413
    assert answer.json() == {"error": f"request body is larger than {MAX_REPORT_BYTES} bytes"}


async def test_report_for_another_device_is_forbidden(client: httpx.AsyncClient, key: str) -> None:
    one = await provision(client, key, name="one")
    two = await provision(client, key, name="two")
    answer = await send(client, one, report(two.uuid, 1, full=True, cpu_usage=5))
    assert answer.status_code == 403
    assert answer.json() == {"error": "a device can only report its own state"}
    assert await reported(client, two) is None


async def test_report_must_hold_exactly_one_device(client: httpx.AsyncClient, key: str) -> None:
    device = await provision(client, key)
    both = {
        **report(device.uuid, 1, full=True),
        **report("0" * 8 + "-0000-0000-0000-" + "0" * 12, 1),
    }
    answer = await send(client, device, both)
    assert answer.status_code == 400
    assert answer.json()["error"] == "a state report holds exactly one device, got 2"


async def test_invalid_reports_name_the_fields(client: httpx.AsyncClient, key: str) -> None:
    device = await provision(client, key)
    cases: list[tuple[Any, str]] = [
        (report(device.uuid, -1), f"{device.uuid}.sequence"),
        (report(device.uuid, 1, cpu_usage=101), f"{device.uuid}.cpu_usage"),
        (report(device.uuid, 1, bogus=True), f"{device.uuid}.bogus"),
        (report(device.uuid, 2**63), f"{device.uuid}.sequence"),
        (report(device.uuid, 1, config={"k": "nul\u0000"}), f"{device.uuid}.config.k"),
        ({device.uuid: {"sequence": 1, "reportedAt": "yesterday"}}, f"{device.uuid}.reportedAt"),
    ]
    for body, field in cases:
        answer = await send(client, device, body)
        assert answer.status_code == 400, body
        assert field in [error["field"] for error in answer.json()["errors"]], answer.text
    not_json = await send_raw(client, device, b"{oops")
    assert not_json.status_code == 400
    assert await reported(client, device) is None


async def test_non_finite_numbers_are_refused(client: httpx.AsyncClient, key: str) -> None:
    """JSON has no NaN or Infinity; 1e400 parses as infinity and would not round-trip."""
    device = await provision(client, key)
    cases: list[tuple[dict[str, Any], str]] = [
        ({"config": {"x": 1e400}}, "config.x"),
        ({"temperature": 1e400}, "temperature"),
    ]
    for fields, field in cases:
        raw = json.dumps(report(device.uuid, 1, full=True, **fields)).encode()
        answer = await send_raw(client, device, raw)
        assert answer.status_code == 400
        assert answer.json()["errors"] == [
            {"field": f"{device.uuid}.{field}", "message": "must be a finite number"}
        ]


async def test_history_is_kept_in_order(client: httpx.AsyncClient, key: str) -> None:
    device = await provision(client, key)
    await send(client, device, report(device.uuid, 1, full=True, cpu_usage=1))
    await send(client, device, report(device.uuid, 2, cpu_usage=2))
    await send(client, device, report(device.uuid, 2, cpu_usage=3))  # duplicate: not kept
    await send(client, device, report(device.uuid, 3, cpu_usage=4))
    path = f"/api/admin/v1/devices/{device.uuid}/reports"
    history = (await client.get(path, headers=ADMIN)).json()
    assert [(r["sequence"], r["full"]) for r in history] == [(1, True), (2, False), (3, False)]
    assert history[1]["body"] == {
        "sequence": 2,
        "reportedAt": "2026-11-25T12:00:00+00:00",
        "cpu_usage": 2.0,
    }
    latest = (await client.get(path, params={"limit": 2}, headers=ADMIN)).json()
    assert [r["sequence"] for r in latest] == [2, 3]
    for bad in ("0", "1001", "x"):
        answer = await client.get(path, params={"limit": bad}, headers=ADMIN)
        assert answer.status_code == 400
        assert answer.json()["errors"][0]["field"] == "limit"


async def test_history_is_bounded(cloud: Cloud, client: httpx.AsyncClient, key: str) -> None:
    """The bound is HISTORY_PER_DEVICE (1000) plus PRUNE_SLACK (50); here the same code
    keeps 3 with a slack of 2: never more than 5 rows, always the newest."""
    device = await provision(client, key)
    service = ReportService(cloud.database, history_per_device=3, prune_slack=2)
    kept_counts = []
    for sequence in range(1, 11):
        parsed = DeviceReport.model_validate(
            {"full": sequence == 1, "sequence": sequence, "reportedAt": "2026-11-25T12:00:00Z"}
        )
        reporter = await service.authenticate(device.api_key)
        assert (await service.apply(reporter, parsed, cloud.clock())).status == "accepted"
        kept_counts.append(len(await service.history(device.uuid, 100)))
    assert kept_counts == [1, 2, 3, 4, 5, 3, 4, 5, 3, 4]
    assert [row.sequence for row in await service.history(device.uuid, 100)] == [7, 8, 9, 10]


async def test_a_stale_snapshot_is_merged_onto_the_newer_report(
    cloud: Cloud, client: httpx.AsyncClient, key: str
) -> None:
    """Two reports authenticated together: the second is applied onto the first one."""
    device = await provision(client, key)
    first = await cloud.reports.authenticate(device.api_key)
    second = await cloud.reports.authenticate(device.api_key)
    one = DeviceReport.model_validate(report(device.uuid, 1, full=True, uptime=1)[device.uuid])
    two = DeviceReport.model_validate(report(device.uuid, 2, cpu_usage=3)[device.uuid])
    assert (await cloud.reports.apply(first, one, cloud.clock())).status == "accepted"
    assert (await cloud.reports.apply(second, two, cloud.clock())).status == "accepted"
    assert (await reported(client, device)) == {
        "reportedAt": "2026-11-25T12:00:00+00:00",
        "uptime": 1.0,
        "cpu_usage": 3.0,
    }
    stale_duplicate = DeviceReport.model_validate(report(device.uuid, 2, cpu_usage=9)[device.uuid])
    assert (await cloud.reports.apply(first, stale_duplicate, cloud.clock())).status == "duplicate"


async def test_deleting_a_device_deletes_its_history(
    client: httpx.AsyncClient, cloud: Cloud, key: str
) -> None:
    device = await provision(client, key)
    await send(client, device, report(device.uuid, 1, full=True))
    await client.delete(f"/api/admin/v1/devices/{device.uuid}", headers=ADMIN)
    async with cloud.database.engine.connect() as conn:
        remaining = (await conn.execute(text("SELECT count(*) FROM device_reports"))).scalar()
    assert remaining == 0


async def test_a_gap_in_the_sequence_asks_the_device_for_a_full_report(
    client: httpx.AsyncClient, key: str
) -> None:
    """A diff after a lost report (3 after 1) leaves the stored state possibly incomplete:
    every poll answer, 200 or 304, then asks for a full report until one arrives."""
    device = await provision(client, key)

    async def poll_header(etag: str | None = None) -> tuple[int, str | None]:
        headers = {**device.auth, **({"If-None-Match": etag} if etag else {})}
        response = await client.get(device.state_path, headers=headers)
        return response.status_code, response.headers.get(FULL_REPORT_HEADER)

    assert (await send(client, device, report(device.uuid, 1, full=True, uptime=1))).is_success
    assert (await send(client, device, report(device.uuid, 2, uptime=2))).is_success
    assert await poll_header() == (200, None)
    assert (await send(client, device, report(device.uuid, 4, uptime=4))).is_success
    etag = (await client.get(device.state_path, headers=device.auth)).headers["ETag"]
    assert await poll_header() == (200, "true")
    assert await poll_header(etag) == (304, "true")
    assert (await send(client, device, report(device.uuid, 5, uptime=5))).is_success
    assert await poll_header(etag) == (304, "true")  # a diff in order does not repair it
    assert (await send(client, device, report(device.uuid, 6, full=True, uptime=6))).is_success
    assert await poll_header(etag) == (304, None)


async def test_the_anomaly_summary_is_kept_with_the_reported_state(
    client: httpx.AsyncClient, key: str
) -> None:
    device = await provision(client, key)
    detection = {
        "timestamp": 1_795_000_000_000,
        "source": "system",
        "metric": "cpu_temp",
        "value": 81.5,
        "expected": 52.0,
        "method": "z_score",
        "severity": "critical",
        "confidence": 0.99,
        "deviation": 9.1,
        "quality": "GOOD",
        "threshold": 3.0,
    }
    summary = {"total": 1, "bySeverity": {"critical": 1}, "recent": [detection]}
    sent = await send(client, device, report(device.uuid, 1, full=True, anomalies=summary))
    assert sent.is_success, sent.text
    assert (await reported(client, device))["anomalies"] == summary


def anomaly(ms: int, metric: str = "cpu_temp", severity: str = "critical") -> dict[str, Any]:
    return {
        "timestamp": ms,
        "source": "system",
        "metric": metric,
        "value": 81.5,
        "expected": 52.0,
        "method": "z_score",
        "severity": severity,
        "confidence": 0.99,
        "deviation": 9.1,
        "quality": "GOOD",
        "threshold": 3.0,
    }


async def test_detections_in_reports_are_stored_once_and_listed_per_device(
    client: httpx.AsyncClient, key: str
) -> None:
    device, other = await provision(client, key), await provision(client, key)
    first = {"total": 2, "recent": [anomaly(2000), anomaly(1000, "memory_percent", "warning")]}
    # The next summary repeats one detection, adds one, and carries one malformed entry.
    second = {"total": 3, "recent": [anomaly(3000), anomaly(2000), {"timestamp": "soon"}]}
    for sequence, summary in ((1, first), (2, second)):
        sent = await send(client, device, report(device.uuid, sequence, anomalies=summary))
        assert sent.is_success, sent.text
    path = f"/api/admin/v1/devices/{device.uuid}/anomalies"
    listed = (await client.get(path, headers=ADMIN)).json()
    assert [a["timestamp"] for a in listed] == [3000, 2000, 1000]
    assert listed[0] == anomaly(3000)
    warnings = (await client.get(path + "?severity=warning", headers=ADMIN)).json()
    assert [a["metric"] for a in warnings] == ["memory_percent"]
    others = f"/api/admin/v1/devices/{other.uuid}/anomalies"
    assert (await client.get(others, headers=ADMIN)).json() == []
    bad = await client.get(path + "?severity=huge", headers=ADMIN)
    assert bad.status_code == 400

"""What iotctl prints for people, from plain Device API answers."""

from __future__ import annotations

import json
from typing import Any

import pytest
from iotctl import formatting as f
from iotctl.output import print_json, print_pairs, print_table


def test_agent_log_line_reads_timestamp_level_component_message() -> None:
    entry = {
        "timestamp": "2026-11-25T12:00:00+00:00",
        "level": "info",
        "component": "reconciler",
        "message": "pass done",
    }
    assert f.format_log_line(entry) == "2026-11-25T12:00:00+00:00 info reconciler pass done"


def test_service_log_line_shows_the_stream_and_skips_the_missing_component() -> None:
    entry = {"timestamp": "2026-11-25T12:00:00Z", "stream": "stderr", "message": "boom"}
    assert f.format_log_line(entry) == "2026-11-25T12:00:00Z stderr boom"


def test_unparsed_line_is_printed_as_it_came() -> None:
    assert f.format_log_line({"message": "not json"}) == "not json"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, "-"),
        ("", "-"),
        (True, "yes"),
        (False, "no"),
        (["a", "b"], "a, b"),
        ([], "-"),
        (3, "3"),
    ],
)
def test_cells(value: Any, expected: str) -> None:
    assert f.text(value) == expected


def test_sizes_durations_and_percentages() -> None:
    assert f.format_bytes(512) == "512 B"
    assert f.format_bytes(3 * 1024**3) == "3.0 GiB"
    assert f.format_bytes(None) == "-"
    assert f.format_duration(59) == "59s"
    assert f.format_duration(3 * 86400 + 4 * 3600 + 5 * 60) == "3d 4h 5m"
    assert f.format_percent(12.345) == "12.3%"
    assert f.format_percent("x") == "-"


def test_status_summary_names_every_part_of_the_device() -> None:
    device = {
        "uuid": "u-1",
        "deviceName": None,
        "provisioningState": "unprovisioned",
        "agentVersion": "0.1.0",
        "cloud": {"state": "online", "endpoint": "https://cloud.example"},
        "mqtt": {"state": "not configured"},
        "engine": {"reachable": True},
        "targetVersion": 3,
        "apps": {"configured": 1, "services": 2, "running": 1, "failed": 1},
        "metrics": {
            "memoryPercent": 50.0,
            "memoryUsedBytes": 1024**3,
            "memoryTotalBytes": 2 * 1024**3,
        },
    }
    pairs = dict(f.status_pairs(device, "http://127.0.0.1:48484"))
    assert pairs["Device"] == "u-1"
    assert pairs["Name"] == "-"
    assert pairs["Agent"] == "0.1.0 at http://127.0.0.1:48484"
    assert pairs["Cloud"] == "online (https://cloud.example)"
    assert pairs["Engine"] == "reachable"
    assert pairs["Apps"] == "1 configured, 2 services: 1 running, 1 failed"
    assert pairs["Memory"] == "50.0% (1.0 GiB of 2.0 GiB)"
    assert pairs["CPU"] == "-"


def test_apps_list_rows_sort_apps_numerically_and_show_failures() -> None:
    state = {
        "1001": {
            "appId": 1001,
            "appName": "web",
            "services": {
                "nginx": {
                    "status": "ImagePullBackOff",
                    "image": "reg/nginx:1",
                    "containerId": None,
                    "restartCount": 0,
                    "error": {
                        "type": "ImagePullBackOff",
                        "message": "manifest unknown",
                        "retryCount": 2,
                        "nextRetry": "2026-11-25T12:00:40Z",
                        "gaveUp": False,
                    },
                }
            },
        },
        "200": {"appId": 200, "appName": "empty", "services": {}},
    }
    rows = f.app_state_rows(state)
    assert [r[0] for r in rows] == ["200", "1001"]
    assert rows[0][2] == "-"
    assert rows[1][3] == "ImagePullBackOff"
    assert rows[1][7] == "ImagePullBackOff: manifest unknown; retry 2 at 2026-11-25T12:00:40Z"


def test_service_rows_show_a_held_stop_and_the_ports() -> None:
    services = [
        {
            "ref": "web-2",
            "appId": 1001,
            "status": "Stopped",
            "override": "stopped",
            "containerName": "web_1001_abc",
            "image": "img",
            "ports": ["127.0.0.1:8080->80/tcp", "53/udp"],
        },
        {"ref": "api-1", "appId": 1001, "status": "Running", "override": None, "ports": []},
    ]
    rows = f.service_rows(services)
    assert [r[0] for r in rows] == ["api-1", "web-2"]
    assert rows[1][2] == "Stopped (override: stopped)"
    assert rows[1][5] == "127.0.0.1:8080->80/tcp, 53/udp"


def test_given_up_failure_says_so() -> None:
    error = {"type": "CrashLoopBackOff", "message": "exited 3", "retryCount": 10, "gaveUp": True}
    assert f.format_error(error) == "CrashLoopBackOff: exited 3; gave up after 10 tries"


@pytest.mark.parametrize(
    ("result", "failed"),
    [
        ({"ok": True, "checks": [{"name": "db", "status": "ok"}]}, False),
        ({"ok": True, "checks": [{"name": "cloud", "status": "not configured"}]}, False),
        ({"ok": False, "checks": [{"name": "db", "status": "ok"}]}, True),
        ({"ok": True, "checks": [{"name": "docker", "status": "fail"}]}, True),
        ({}, True),
    ],
)
def test_diagnostics_fail_when_the_agent_or_any_check_says_so(
    result: dict[str, Any], failed: bool
) -> None:
    assert f.diagnostics_failed(result) is failed


def test_config_rows_are_sorted_by_key() -> None:
    config = {
        "LOG_LEVEL": {
            "value": "debug",
            "source": "override",
            "default": "info",
            "description": "d",
        },
        "DEVICE_NAME": {"value": "", "source": "default", "default": "", "description": "n"},
    }
    assert f.config_rows(config) == [
        ["DEVICE_NAME", "-", "default", "-", "n"],
        ["LOG_LEVEL", "debug", "override", "info", "d"],
    ]


def test_piped_tables_have_no_colour_codes_or_trailing_blanks(
    capsys: pytest.CaptureFixture[str],
) -> None:
    print_table(
        ["REF", "STATUS"], [["web-1", "Running"], ["a-much-longer-ref-2", "CrashLoopBackOff"]]
    )
    out = capsys.readouterr().out
    assert "\x1b[" not in out
    assert out.splitlines() == [
        "REF                  STATUS",
        "web-1                Running",
        "a-much-longer-ref-2  CrashLoopBackOff",
    ]


def test_server_text_is_printed_verbatim_not_as_markup(capsys: pytest.CaptureFixture[str]) -> None:
    print_pairs([("Message", "[bold]not markup[/bold] :smile:")])
    assert "[bold]not markup[/bold] :smile:" in capsys.readouterr().out


def test_json_output_is_plain_json_on_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    print_json({"apps": {"1001": {"appName": "web"}}})
    captured = capsys.readouterr()
    assert json.loads(captured.out) == {"apps": {"1001": {"appName": "web"}}}
    assert captured.err == ""


def test_status_shows_cloud_sync_progress_queue_and_errors() -> None:
    cloud = {
        "state": "offline",
        "endpoint": "https://cloud.example",
        "lastPollSecondsAgo": 75.2,
        "lastReportSecondsAgo": None,
        "reportsQueued": 12,
        "poll": {"circuitOpen": True, "circuitCooldownRemainingS": 120, "lastError": "refused"},
        "report": {"circuitOpen": False, "lastError": None},
    }
    pairs = dict(f.status_pairs({"cloud": cloud}, "http://127.0.0.1:48484"))
    assert pairs["Cloud"] == "offline (https://cloud.example)"
    assert pairs["Cloud sync"] == (
        "last poll 1m 15s ago, last report never, 12 queued, poll paused for 2m 0s, "
        "poll error: refused"
    )


def test_status_has_no_sync_line_when_the_device_is_not_provisioned() -> None:
    pairs = dict(f.status_pairs({"cloud": {"state": "not provisioned"}}, "http://x"))
    assert "Cloud sync" not in pairs


def test_status_shows_log_shipping_while_it_runs() -> None:
    shipping = {
        "state": "running",
        "shipped": 1200,
        "pending": 40,
        "containersFollowed": 3,
        "droppedFromOutbox": 5,
        "droppedInMemory": 1,
        "lastError": "cloud answered 503: database unavailable",
    }
    pairs = dict(f.status_pairs({"logShipping": shipping}, "http://x"))
    assert pairs["Log shipping"] == (
        "1200 shipped, 40 waiting, 3 containers followed, 6 dropped; "
        "last error: cloud answered 503: database unavailable"
    )
    stopped = dict(f.status_pairs({"logShipping": {"state": "stopped"}}, "http://x"))
    assert "Log shipping" not in stopped

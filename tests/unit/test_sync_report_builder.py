"""Reports: the full picture, diffs per field and per app, and the shared wire contract."""

from __future__ import annotations

from typing import Any

from iotistic_agent.cloud.report_builder import device_fields, diff_fields
from iotistic_contracts.sync import StateReport

UUID = "3f2a0c1e-0000-4000-8000-000000000001"


def service(name: str, status: str = "Running", error: dict[str, Any] | None = None) -> dict:
    return {
        "serviceId": 1,
        "serviceName": name,
        "status": status,
        "targetState": "running",
        "containerId": "abc" if status == "Running" else None,
        "image": "127.0.0.1:5000/app:v1",
        "restartCount": 0,
        "error": error,
    }


def apps(**services: dict) -> dict:
    return {"1001": {"appId": 1001, "appName": "demo", "services": services}}


METRICS = {
    "cpuPercent": 12.345,
    "memoryUsedBytes": 512 * 1024 * 1024 + 5,
    "memoryTotalBytes": 2048 * 1024 * 1024,
    "storageUsedBytes": None,
    "uptimeSeconds": 100,
}


def fields(app_state: dict, metrics: dict | None = METRICS, version: int = 3) -> dict:
    return device_fields(app_state, {"x": 1}, version, metrics, "0.1.0", "Debian 12")


def test_full_fields_carry_apps_version_applied_flag_and_coarse_metrics() -> None:
    result = fields(apps(web=service("web")))
    assert result["targetVersion"] == 3
    assert result["targetApplied"] is True
    assert result["cpu_usage"] == 12.3
    assert result["memory_usage"] == 512 and result["memory_total"] == 2048
    assert "storage_usage" not in result  # unknown metrics are left out, not sent as null
    assert result["apps"]["1001"]["services"]["web"]["status"] == "Running"


def test_a_failing_service_means_the_target_is_not_applied() -> None:
    error = {
        "type": "ImagePullBackOff",
        "message": "manifest unknown",
        "retryCount": 2,
        "lastFailure": "2026-11-25T10:00:00Z",
        "nextRetry": "2026-11-25T10:00:20Z",
        "gaveUp": False,
    }
    result = fields(apps(web=service("web"), db=service("db", "ImagePullBackOff", error)))
    assert result["targetApplied"] is False


def test_diff_is_empty_when_nothing_changed() -> None:
    state = fields(apps(web=service("web")))
    assert diff_fields(state, fields(apps(web=service("web")))) == {}


def test_diff_carries_only_changed_fields_and_changed_apps() -> None:
    before = fields(apps(web=service("web")))
    after_apps = apps(web=service("web", "Stopped"))
    after_apps["1002"] = {"appId": 1002, "appName": "other", "services": {}}
    after = fields(after_apps, metrics={**METRICS, "uptimeSeconds": 110})
    diff = diff_fields(before, after)
    assert set(diff) == {"apps", "uptime", "targetApplied"}
    assert set(diff["apps"]) == {"1001", "1002"}
    assert diff["uptime"] == 110


def test_a_removed_app_is_null_in_the_diff() -> None:
    before = fields(apps(web=service("web")))
    after = fields({})
    assert diff_fields(before, after)["apps"] == {"1001": None}


def test_full_and_diff_reports_validate_against_the_shared_contract() -> None:
    before = fields(apps(web=service("web")))
    after = fields(apps(web=service("web", "Stopped")), version=4)
    full = {"full": True, "sequence": 1, "reportedAt": "2026-11-25T10:00:00Z", **before}
    diff = {
        "sequence": 2,
        "reportedAt": "2026-11-25T10:00:10Z",
        **diff_fields(before, after),
    }
    for report in (full, diff):
        parsed = StateReport.model_validate({UUID: report}).root[UUID]
        assert parsed.sequence == report["sequence"]
    assert StateReport.model_validate({UUID: diff}).root[UUID].targetVersion == 4

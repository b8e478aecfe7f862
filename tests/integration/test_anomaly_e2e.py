"""End to end with real processes: the agent's simulation injects spikes into a system
metric as it is sampled, the on-device detector finds them, stores them and reports them,
and the cloud lists them for the device."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.integration.agent_process import AgentProcess
from tests.integration.waiting import wait_for
from tests.support.cloud_process import CloudProcess

SIMULATION = {
    "scenarios": {
        "anomaly_injection": {
            "enabled": True,
            "metrics": ["storage_percent"],
            "pattern": "spike",
            "intervalMs": 3000,
            "magnitude": 5,
        }
    }
}


def test_injected_spikes_are_detected_on_the_device_and_listed_by_the_cloud(
    tmp_path: Path,
) -> None:
    cloud = CloudProcess(tmp_path / "cloud").start()
    key = cloud.cli("keys", "create", "--quiet").stdout.strip()
    agent = AgentProcess(
        tmp_path / "agent",
        PROVISIONING_API_KEY=key,
        CLOUD_API_ENDPOINT=cloud.url,
        REPORT_INTERVAL_MS="300",
        SIMULATION_MODE="true",
        SIMULATION_CONFIG=json.dumps(SIMULATION),
        # Fast enough for a test: 10 points of warm-up at 10 samples a second.
        ANOMALY_WINDOW_SIZE="10",
        ANOMALY_SAMPLE_INTERVAL_MS="100",
    ).start()
    try:
        device = wait_for(
            lambda: (s := agent.get("/v1/provision").json())["provisioned"] and s["uuid"], 30
        )

        def device_found() -> list[dict[str, Any]]:
            listed: list[dict[str, Any]] = agent.get("/v1/anomalies").json()["anomalies"]
            return [a for a in listed if a["metric"] == "storage_percent"]

        found = wait_for(device_found, 30, 0.2, f"no detection; log:\n{agent.log()[-3000:]}")
        first = found[-1]  # newest first; later spikes of the same size may be a known level
        assert first["source"] == "system"
        assert first["severity"] in ("warning", "critical")

        def cloud_found() -> list[dict[str, Any]]:
            result = cloud.cli("devices", "anomalies", device, "--json")
            assert result.returncode == 0, result.stderr
            listed: list[dict[str, Any]] = json.loads(result.stdout)
            return [a for a in listed if a["metric"] == "storage_percent"]

        wait_for(cloud_found, 30, 0.3, "the cloud never listed the device's anomaly")
        shown = json.loads(cloud.cli("devices", "show", device, "--json").stdout)
        assert shown["reportedState"]["simulation"] == ["anomaly_injection"]
    finally:
        agent.stop()
        cloud.stop()

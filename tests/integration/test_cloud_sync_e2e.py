"""End to end with real processes: the cloud, an agent that provisions itself with it, the
Docker engine running what the cloud says, and an outage of the cloud in the middle.

Run on both of the cloud's database backends: SQLite (embedded default) and PostgreSQL.
"""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.integration.agent_process import AgentProcess, app, service_containers, svc, target
from tests.integration.dockerkit import ImageSet
from tests.integration.test_iotctl import iotctl
from tests.integration.waiting import wait_for
from tests.support.cloud_process import CloudProcess
from tests.support.postgres import PostgresServer, postgres_or_fail

POLL_MS = 1000
# Short intervals and backoff so that a test sees many cycles in seconds; the logic is the
# one that runs with the defaults.
FAST_SYNC = {
    "POLL_INTERVAL_MS": str(POLL_MS),
    "REPORT_INTERVAL_MS": "300",
    "METRICS_INTERVAL_MS": "5000",
    "CLOUD_BACKOFF_BASE_MS": "200",
    "CLOUD_BACKOFF_MAX_MS": "1000",
}
FAILED_PULL = {"ImagePullBackOff", "ErrImagePull"}


@pytest.fixture(scope="module")
def postgres_server() -> Iterator[PostgresServer]:
    with postgres_or_fail("the end-to-end cloud tests") as server:
        yield server


@pytest.fixture(params=["sqlite", "postgresql"])
def cloud(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[CloudProcess]:
    database_url = None
    if request.param == "postgresql":
        server: PostgresServer = request.getfixturevalue("postgres_server")
        database_url = server.create_database(f"e2e_{uuid.uuid4().hex[:10]}")
    proc = CloudProcess(tmp_path / "cloud", database_url=database_url).start()
    try:
        yield proc
    finally:
        proc.stop()


def cli_json(cloud: CloudProcess, *args: str) -> Any:
    result = cloud.cli(*args, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def reported_service(cloud: CloudProcess, device: str, name: str) -> dict[str, Any] | None:
    reported = cli_json(cloud, "devices", "show", device).get("reportedState") or {}
    services = ((reported.get("apps") or {}).get("1001") or {}).get("services") or {}
    found: dict[str, Any] | None = services.get(name)
    return found


def cloud_state(agent: AgentProcess) -> dict[str, Any]:
    state: dict[str, Any] = agent.get("/v1/device").json()["cloud"]
    return state


def test_device_provisions_follows_the_cloud_and_survives_an_outage(
    cloud: CloudProcess, images: ImageSet, docker_clean: None, tmp_path: Path
) -> None:
    created = cloud.cli("keys", "create", "--max-devices", "1", "--expires-in", "1h", "--quiet")
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip()
    agent_env = {
        "PROVISIONING_API_KEY": key,
        "CLOUD_API_ENDPOINT": cloud.url,
        "REQUIRE_PROVISIONING": "true",
        **FAST_SYNC,
    }
    agent = AgentProcess(tmp_path / "agent", **agent_env).start()
    try:
        # 1. It provisions itself, and the cloud knows it.
        status = wait_for(
            lambda: (s := agent.get("/v1/provision").json())["provisioned"] and s,
            30,
            message=f"agent did not provision; log:\n{agent.log()[-3000:]}",
        )
        device = status["uuid"]
        assert cli_json(cloud, "devices", "show", device)["uuid"] == device
        wait_for(lambda: cloud_state(agent)["state"] == "online", 10)

        # 2. Apps set on the cloud run within one poll interval (plus the download).
        target_file = tmp_path / "target.json"
        wanted = target(
            app(1001, svc(1, "web", images.v1), svc(2, "broken", images.missing), name="demo")
        )
        target_file.write_text(json.dumps({**wanted, "config": {}}))
        set_at = time.monotonic()
        result = cloud.cli("devices", "set-target", device, str(target_file))
        assert result.returncode == 0, result.stderr
        version = int(result.stdout.strip())
        wait_for(
            lambda: agent.get("/v1/device").json()["targetVersion"] == version,
            POLL_MS / 1000 + 1.5,
            message="the agent did not fetch the new target within one poll interval",
        )
        fetched_after = time.monotonic() - set_at
        web = agent.wait_status(1001, "web", "Running", 60)

        # 3. The cloud shows the reported state, including the failing service.
        def reported_failure() -> bool:
            web_seen = reported_service(cloud, device, "web") or {}
            broken = reported_service(cloud, device, "broken") or {}
            return web_seen.get("status") == "Running" and broken.get("status") in FAILED_PULL

        wait_for(reported_failure, 60, 0.3, "the cloud never saw web running and broken failing")
        broken = reported_service(cloud, device, "broken") or {}
        assert broken["error"]["type"] in FAILED_PULL
        assert "manifest unknown" in broken["error"]["message"]
        shown = cli_json(cloud, "devices", "show", device)
        assert shown["status"] == "online"
        assert shown["reportedState"]["targetVersion"] == version

        # 4. The cloud goes away: containers keep running, reports queue, the state is offline.
        port = urlsplit(cloud.url).port
        assert port is not None
        cloud.stop()
        wait_for(lambda: cloud_state(agent)["state"] == "offline", 15)
        wait_for(lambda: cloud_state(agent)["reportsQueued"] >= 3, 15)

        # ... also across an agent restart while offline.
        assert agent.terminate() == 0
        agent.start()
        # Adopted, not recreated: the same container.
        assert agent.wait_status(1001, "web", "Running", 30)["containerId"] == web["containerId"]
        assert agent.get("/v1/device").json()["targetVersion"] == version
        wait_for(lambda: cloud_state(agent)["state"] == "offline", 15)
        queued = wait_for(lambda: (n := cloud_state(agent)["reportsQueued"]) >= 5 and n, 15)
        assert [c["Id"] for c in service_containers(1001, "web")] == [web["containerId"]]
        assert service_containers(1001, "web")[0]["State"]["Running"] is True

        # 5. The cloud returns on the same address: every queued report arrives, in order.
        cloud.start("--port", str(port))
        wait_for(
            lambda: (s := cloud_state(agent))["state"] == "online" and s["reportsQueued"] == 0,
            30,
            0.2,
            f"queue never drained; agent log:\n{agent.log()[-3000:]}",
        )
        history = cli_json(cloud, "devices", "reports", device, "--limit", "1000")
        sequences = sorted(r["sequence"] for r in history)
        assert len(history) >= queued
        assert sequences == list(range(sequences[0], sequences[-1] + 1)), "a report is missing"
        assert cli_json(cloud, "devices", "show", device)["status"] == "online"
        # What the cloud holds after the queue is what the device runs (the report built
        # right after the restart did not claim the adopted container was gone).
        seen_web = reported_service(cloud, device, "web") or {}
        assert (seen_web.get("status"), seen_web.get("containerId")) == (
            "Running",
            web["containerId"],
        )
        print(f"\n[e2e] target fetched {fetched_after:.2f}s after set-target; {queued} queued")
    finally:
        agent.stop()


def test_operator_provisioning_against_the_real_cloud(
    tmp_path: Path, images: ImageSet, docker_clean: None
) -> None:
    """iotctl provision / deprovision with the real cloud: each refusal reaches the operator
    with the cloud's reason and stores nothing; deprovision keeps the identity; no secret is
    ever logged on either side."""
    cloud = CloudProcess(tmp_path / "cloud").start()
    agent = AgentProcess(tmp_path / "agent", **FAST_SYNC).start()
    try:

        def key(*args: str) -> str:
            created = cloud.cli("keys", "create", "--quiet", *args)
            assert created.returncode == 0, created.stderr
            return created.stdout.strip()

        single = key("--max-devices", "1")
        revoked_key = key()
        revoked_id = next(
            k["id"] for k in cli_json(cloud, "keys", "list") if revoked_key.startswith(k["prefix"])
        )
        assert cloud.cli("keys", "revoke", str(revoked_id)).returncode == 0
        refusals = {
            "x" * 40: "provisioning key is not valid",
            revoked_key: "revoked",
        }
        for bad, reason in refusals.items():
            proc = iotctl(agent, "provision", bad, "--api", cloud.url)
            assert proc.returncode != 0 and reason in proc.stderr, proc.stderr
            assert bad not in proc.stderr + proc.stdout
        assert agent.get("/v1/provision").json()["provisioned"] is False
        assert cli_json(cloud, "devices", "list") == []

        proc = iotctl(agent, "provision", single, "--api", cloud.url, "--name", "pump-7")
        assert proc.returncode == 0, proc.stderr
        device = agent.get("/v1/provision").json()
        assert device["provisioned"] is True and device["deviceName"] == "pump-7"
        listed = cli_json(cloud, "devices", "list")
        assert [d["uuid"] for d in listed] == [device["uuid"]]
        wait_for(lambda: cloud_state(agent)["state"] == "online", 15)

        # The same single-use key for a second device is exhausted.
        other = AgentProcess(tmp_path / "other", **FAST_SYNC).start()
        try:
            proc = iotctl(other, "provision", single, "--api", cloud.url)
            assert proc.returncode != 0 and "maximum of 1 device" in proc.stderr, proc.stderr
        finally:
            other.stop()

        # Deprovision: gone from the cloud, sync stopped, identity kept for later.
        proc = iotctl(agent, "deprovision")
        assert proc.returncode == 0, proc.stderr
        assert cli_json(cloud, "devices", "list") == []
        after = agent.get("/v1/provision").json()
        assert after["provisioned"] is False and after["uuid"] == device["uuid"]
        assert cloud_state(agent)["state"] in ("not provisioned", "not configured")
        again = iotctl(agent, "provision", key(), "--api", cloud.url)
        assert again.returncode == 0, again.stderr
        assert [d["uuid"] for d in cli_json(cloud, "devices", "list")] == [device["uuid"]]

        # No secret in any log: provisioning keys, the device API key, the MQTT password.
        row = (
            sqlite3.connect(agent.database)
            .execute("SELECT apiKey, mqttPassword FROM device")
            .fetchone()
        )
        secrets = [single, revoked_key, *row]
        # stderr of both processes, and the agent's own rotated JSON-lines files.
        files = sorted((agent.data_dir / "logs").glob("agent.log*"))
        assert files, "the agent writes <data dir>/logs/agent.log"
        logs = agent.log() + cloud.log()
        logs += "".join(path.read_text(errors="replace") for path in files)
        for secret in secrets:
            assert secret and secret not in logs
    finally:
        agent.stop()
        cloud.stop()

"""The device policy on the real agent (issue 12, item 10): a local target that asks for host
access is a 400 naming the field and the setting, and nothing reaches the engine; the same
request passes once the environment allows it; a cloud target that breaks the policy is not
applied and the refusal shows in the device's status and in its report to the real cloud.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

from tests.integration.agent_process import (
    AgentProcess,
    app,
    managed_containers,
    service_containers,
    svc,
    target,
)
from tests.integration.dockerkit import ImageSet
from tests.integration.test_cloud_sync_e2e import FAST_SYNC, cli_json
from tests.integration.waiting import wait_for
from tests.support.cloud_process import CloudProcess


def bind_target(images: ImageSet, source: Path) -> dict[str, Any]:
    config = {"volumes": [f"{source}:/host-data"]}
    return target(app(1001, svc(1, "main", images.v1, config=config)))


def test_a_local_target_asking_for_the_host_is_refused_until_the_environment_allows_it(
    agent: AgentProcess, images: ImageSet, tmp_path: Path
) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    refused = agent.post_target(bind_target(images, shared))
    assert refused.status_code == 400, refused.text
    body = refused.json()
    assert body["error"] == "target_refused"
    assert body["refusals"] == [
        {
            "field": "apps.1001.services[0].config.volumes[0]",
            "message": f"host path {shared} is not under an allowed prefix (allowed: none)",
            "setting": "DEVICE_POLICY_ALLOWED_BIND_PREFIXES",
        }
    ]
    engine = {"volumes": ["/var/run/docker.sock:/var/run/docker.sock"]}
    socket = agent.post_target(target(app(1001, svc(1, "main", images.v1, config=engine))))
    assert socket.status_code == 400 and "DEVICE_POLICY_ALLOW_DOCKER_SOCKET" in socket.text
    # Neither the Device API nor the target's own config can widen the policy.
    widen = httpx.put(
        f"{agent.url}/v1/config/DEVICE_POLICY_ALLOWED_BIND_PREFIXES",
        json={"value": str(shared)},
        headers=agent.headers,
        timeout=10,
    )
    assert widen.status_code == 400 and widen.json()["error"] == "unknown_config_key"
    sneaky = {**bind_target(images, shared), "config": {"DEVICE_POLICY_ALLOWED_BIND_PREFIXES": "/"}}
    assert agent.post_target(sneaky).status_code == 400
    assert agent.get("/v2/local/target-state").headers["X-Target-Version"] == "0"
    assert managed_containers() == []
    device = agent.get("/v1/device").json()
    assert device["targetRefused"]["source"] == "local"
    assert (
        device["targetRefused"]["refusals"][0]["setting"] == "DEVICE_POLICY_ALLOWED_BIND_PREFIXES"
    )

    # The operator allows the folder in the agent's environment: the same target runs.
    assert agent.terminate() == 0
    agent.env["DEVICE_POLICY_ALLOWED_BIND_PREFIXES"] = str(shared)
    agent.start()
    agent.set_target(bind_target(images, shared))
    agent.wait_status(1001, "main", "Running")
    (container,) = service_containers(1001, "main")
    assert f"{shared}:/host-data" in container["HostConfig"]["Binds"]
    assert agent.get("/v1/device").json()["targetRefused"] is None


def test_a_cloud_target_the_policy_refuses_is_not_applied_and_the_cloud_sees_why(
    images: ImageSet, docker_clean: None, tmp_path: Path
) -> None:
    cloud = CloudProcess(tmp_path / "cloud").start()
    agent: AgentProcess | None = None
    try:
        created = cloud.cli("keys", "create", "--max-devices", "1", "--quiet")
        assert created.returncode == 0, created.stderr
        env = {"PROVISIONING_API_KEY": created.stdout.strip(), "CLOUD_API_ENDPOINT": cloud.url}
        agent = AgentProcess(tmp_path / "agent", REQUIRE_PROVISIONING="true", **env, **FAST_SYNC)
        agent.start()
        device = wait_for(
            lambda: (s := agent.get("/v1/provision").json())["provisioned"] and s["uuid"],
            30,
            message=f"agent did not provision; log:\n{agent.log()[-3000:]}",
        )

        def set_target(wanted: dict[str, Any]) -> int:
            path = tmp_path / "target.json"
            path.write_text(json.dumps({**wanted, "config": {}}))
            result = cloud.cli("devices", "set-target", device, str(path))
            assert result.returncode == 0, result.stderr
            return int(result.stdout.strip())

        privileged = target(app(1001, svc(1, "main", images.v1, config={"privileged": True})))
        version = set_target(privileged)
        refused = wait_for(
            lambda: agent.get("/v1/device").json()["targetRefused"],
            30,
            0.2,
            f"the agent never refused the target; log:\n{agent.log()[-3000:]}",
        )
        assert (refused["source"], refused["version"], refused["applied"]) == (
            "cloud",
            version,
            False,
        )
        assert refused["refusals"][0]["field"] == "apps.1001.services[0].config.privileged"
        assert "DEVICE_POLICY_ALLOW_PRIVILEGED" in refused["message"]

        def reported_refusal() -> dict[str, Any] | None:
            state = cli_json(cloud, "devices", "show", device).get("reportedState") or {}
            found: dict[str, Any] | None = state.get("targetRefusal")
            return found or None

        seen = wait_for(reported_refusal, 30, 0.3, "the cloud never saw the refusal")
        assert seen["version"] == version and seen["refusals"] == refused["refusals"]
        assert agent.get("/v1/device").json()["targetVersion"] == 0
        assert managed_containers() == []

        # A target within the policy: applied, and the refusal is gone on both sides.
        fine = set_target(target(app(1001, svc(1, "main", images.v1))))
        agent.wait_status(1001, "main", "Running", 60)
        assert agent.get("/v1/device").json()["targetVersion"] == fine
        assert agent.get("/v1/device").json()["targetRefused"] is None
        wait_for(lambda: reported_refusal() is None, 30, 0.3, "the cloud still shows a refusal")
    finally:
        if agent is not None:
            agent.stop()
        cloud.stop()

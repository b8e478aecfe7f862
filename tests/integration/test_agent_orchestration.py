"""The agent process against the real Docker engine: target state in, containers out."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import httpx
import pytest

from tests.integration import dockerkit
from tests.integration.agent_process import (
    AgentProcess,
    app,
    managed_containers,
    service_containers,
    svc,
    target,
)
from tests.integration.dockerkit import ImageSet
from tests.integration.waiting import wait_for


def running_ids(app_id: int, name: str) -> list[str]:
    return [c["Id"] for c in service_containers(app_id, name) if c["State"]["Status"] == "running"]


def test_first_start_creates_identity_and_migrated_wal_database(agent: AgentProcess) -> None:
    conn = sqlite3.connect(agent.database)
    (uuid,) = conn.execute("SELECT uuid FROM device").fetchone()
    assert len(uuid) == 36
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA user_version").fetchone()[0] >= 1
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"device", "target_state", "service_status"} <= tables
    assert agent.get("/v2/version").json()["version"]
    assert httpx.get(f"{agent.url}/v1/healthy").status_code == 200


def test_sigterm_stops_within_five_seconds_and_leaves_containers_running(
    agent: AgentProcess, images: ImageSet
) -> None:
    agent.set_target(target(app(1001, svc(1, "main", images.v1))))
    agent.wait_status(1001, "main", "Running")
    started = time.monotonic()
    assert agent.terminate() == 0
    assert time.monotonic() - started < 5
    assert len(running_ids(1001, "main")) == 1


def test_one_missing_image_backs_off_while_the_other_services_run_and_fixing_it_converges(
    agent: AgentProcess, images: ImageSet
) -> None:
    def three(bad: str) -> dict[str, object]:
        return target(
            app(
                1001, svc(1, "web", images.http), svc(2, "worker", images.v1), svc(3, "broken", bad)
            )
        )

    agent.set_target(three(images.missing))
    agent.wait_status(1001, "web", "Running")
    agent.wait_status(1001, "worker", "Running")
    broken = agent.wait_status(1001, "broken", "ImagePullBackOff")
    error = broken["error"]
    assert "manifest unknown" in error["message"]
    assert error["retryCount"] >= 1 and error["nextRetry"] is not None
    assert broken["containerId"] is None

    agent.set_target(three(images.v2))
    agent.wait_status(1001, "broken", "Running")
    assert agent.service_state(1001, "broken")["error"] is None


def test_pause_and_unpause_keep_the_container_id(agent: AgentProcess, images: ImageSet) -> None:
    agent.set_target(target(app(1001, svc(1, "main", images.v1))))
    first = agent.wait_status(1001, "main", "Running")["containerId"]
    agent.set_target(target(app(1001, svc(1, "main", images.v1, state="paused"))))
    assert agent.wait_status(1001, "main", "Paused")["containerId"] == first
    agent.set_target(target(app(1001, svc(1, "main", images.v1, state="running"))))
    assert agent.wait_status(1001, "main", "Running")["containerId"] == first
    agent.set_target(target(app(1001, svc(1, "main", images.v1, state="stopped"))))
    assert agent.wait_status(1001, "main", "Stopped")["containerId"] == first
    agent.set_target(target(app(1001, svc(1, "main", images.v1, state="running"))))
    assert agent.wait_status(1001, "main", "Running")["containerId"] == first


def test_named_volume_data_survives_an_image_update(agent: AgentProcess, images: ImageSet) -> None:
    config = {"volumes": ["appdata:/data"]}
    agent.set_target(target(app(1001, svc(1, "main", images.v1, config=config))))
    old = agent.wait_status(1001, "main", "Running")["containerId"]
    dockerkit.docker("exec", old, "sh", "-c", "echo kept > /data/file")
    agent.set_target(target(app(1001, svc(1, "main", images.v2, config=config))))

    def new_container() -> str | None:
        s = agent.service_state(1001, "main")
        return s["containerId"] if s["status"] == "Running" and s["containerId"] != old else None

    new = wait_for(new_container, 60, 0.2, "service was not recreated on the new image")
    assert dockerkit.docker("exec", new, "cat", "/data/file").stdout.strip() == "kept"
    assert dockerkit.docker("exec", new, "cat", "/etc/image-version").stdout.strip() == "v2"
    mounts = dockerkit.docker(
        "inspect", "-f", "{{range .Mounts}}{{.Name}}{{end}}", new
    ).stdout.strip()
    assert mounts == "1001_appdata"
    assert "replacing: image changed" in agent.log()


def test_a_container_removed_by_hand_comes_back_on_the_next_pass(
    agent: AgentProcess, images: ImageSet
) -> None:
    agent.set_target(target(app(1001, svc(1, "main", images.v1))))
    first = agent.wait_status(1001, "main", "Running")["containerId"]
    dockerkit.docker("rm", "-f", first)
    wait_for(lambda: [i for i in running_ids(1001, "main") if i != first], 30, 0.2, "not recreated")
    assert len(service_containers(1001, "main")) == 1


def test_unchanged_target_is_never_recreated_and_restart_policy_changes_in_place(
    agent: AgentProcess, images: ImageSet
) -> None:
    config = {"environment": {"A": "1", "B": "2"}, "ports": ["127.0.0.1::80"], "restart": "always"}
    agent.set_target(target(app(1001, svc(1, "web", images.http, config=config))))
    first = agent.wait_status(1001, "web", "Running")["containerId"]
    reordered = {"environment": ["B=2", "A=1"], "ports": ["127.0.0.1::80/tcp"], "restart": "always"}
    body = agent.post_target(target(app(1001, svc(1, "web", images.http, config=reordered)))).json()
    assert body["status"] == "success"
    changed = {**config, "restart": "unless-stopped", "resources": {"limits": {"memory": "64M"}}}
    agent.set_target(target(app(1001, svc(1, "web", images.http, config=changed))))

    def updated() -> bool:
        (c,) = service_containers(1001, "web")
        host = c["HostConfig"]
        return bool(
            host["RestartPolicy"]["Name"] == "unless-stopped" and host["Memory"] == 64 << 20
        )

    wait_for(updated, 30, 0.2, "restart policy and memory were not updated in place")
    assert [c["Id"] for c in service_containers(1001, "web")] == [first]


def test_services_reach_each_other_by_name_on_the_app_network(
    agent: AgentProcess, images: ImageSet
) -> None:
    agent.set_target(
        target(
            app(
                1001,
                svc(1, "web", images.http),
                svc(2, "client", images.v1, config={"depends_on": ["web"]}),
            )
        )
    )
    agent.wait_status(1001, "web", "Running")
    client = agent.wait_status(1001, "client", "Running")["containerId"]
    page = wait_for(
        lambda: (
            dockerkit.docker("exec", client, "wget", "-q", "-O-", "http://web/", check=False).stdout
        ),
        30,
        0.3,
        "client could not reach web by its service name",
    )
    assert page == images.index_html


def test_invalid_target_is_rejected_whole_with_the_bad_field_named(
    agent: AgentProcess, images: ImageSet
) -> None:
    agent.set_target(target(app(1001, svc(1, "main", images.v1))))
    bad = target(app(1001, svc(1, "main", images.v2, config={"portz": ["80:80"]})))
    response = agent.post_target(bad)
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "invalid_target_state"
    assert "portz" in body["message"] and "unknown field" in body["message"]
    stored = agent.get("/v2/local/target-state").json()
    assert stored["apps"]["1001"]["services"][0]["imageName"] == images.v1
    not_json = agent.post("/v2/local/target-state", content=b"{nope")
    assert not_json.status_code == 400 and "JSON" in not_json.json()["message"]


def test_removing_an_app_from_the_target_removes_its_containers_network_and_volumes(
    agent: AgentProcess, images: ImageSet
) -> None:
    agent.set_target(target(app(1001, svc(1, "main", images.v1, config={"volumes": ["d:/d"]}))))
    agent.wait_status(1001, "main", "Running")
    agent.set_target(target())
    wait_for(lambda: not managed_containers(1001), 30, 0.2, "containers not removed")

    def leftovers() -> list[str]:
        nets = dockerkit.docker(
            "network", "ls", "-q", "--filter", "label=io.iotistic.app-id=1001"
        ).stdout.split()
        vols = dockerkit.docker(
            "volume", "ls", "-q", "--filter", "label=io.iotistic.app-id=1001"
        ).stdout.split()
        return nets + vols

    wait_for(lambda: not leftovers(), 30, 0.2, "network or volume left behind")


@pytest.mark.parametrize("restart", ["no", "always", "on-failure"])
def test_a_crashing_service_reports_crash_loop_backoff_with_retry_fields(
    agent: AgentProcess, images: ImageSet, restart: str
) -> None:
    agent.set_target(
        target(
            app(
                1001,
                svc(1, "ok", images.v1),
                svc(2, "crasher", images.crash, config={"restart": restart}),
            )
        )
    )
    agent.wait_status(1001, "ok", "Running")
    state = agent.wait_status(1001, "crasher", "CrashLoopBackOff", timeout=60)
    error = state["error"]
    assert error["retryCount"] >= 1 and error["nextRetry"] is not None

    # The engine may restart it before the agent ever sees it down (Docker then shows exit
    # code 0): the crash's code is reported once the agent has seen it.
    def exit_code_reported() -> bool:
        message = str(agent.service_state(1001, "crasher")["error"]["message"])
        return "code 3" in message

    wait_for(exit_code_reported, 60, 0.2, "the crash's exit code never reached the status")


def test_a_foreign_change_to_the_restart_policy_and_a_manual_stop_are_corrected(
    agent: AgentProcess, images: ImageSet
) -> None:
    agent.set_target(target(app(1001, svc(1, "main", images.v1))))
    cid = agent.wait_status(1001, "main", "Running")["containerId"]
    dockerkit.docker("update", "--restart", "no", cid)
    wait_for(
        lambda: (
            dockerkit.docker(
                "inspect", "-f", "{{.HostConfig.RestartPolicy.Name}}", cid
            ).stdout.strip()
            == "always"
        ),
        30,
        0.2,
        "restart policy not restored",
    )
    dockerkit.docker("stop", "-t", "1", cid)
    # A stop the agent did not ask for counts as a failure: it comes back after the backoff.
    wait_for(lambda: running_ids(1001, "main") == [cid], 40, 0.3, "stopped container not restarted")


def test_containers_without_agent_labels_are_never_touched(
    agent: AgentProcess, images: ImageSet
) -> None:
    dockerkit.docker("pull", images.v1)
    foreign = dockerkit.docker(
        "run", "-d", "--name", f"foreign-{agent.port}", images.v1
    ).stdout.strip()
    try:
        agent.set_target(target(app(1001, svc(1, "main", images.v1))))
        agent.wait_status(1001, "main", "Running")
        agent.set_target(target())
        wait_for(lambda: not managed_containers(1001), 30, 0.2, "managed container not removed")
        status = dockerkit.docker("inspect", "-f", "{{.State.Status}}", foreign).stdout.strip()
        assert status == "running"
    finally:
        dockerkit.docker("rm", "-f", foreign, check=False)


def test_a_restarted_agent_adopts_its_containers_without_recreating_them(
    tmp_path: Path, images: ImageSet, docker_clean: None
) -> None:
    config = {"ports": ["127.0.0.1::80"], "environment": {"X": "1"}, "volumes": ["d:/d"]}
    first = AgentProcess(tmp_path / "agent").start()
    try:
        first.set_target(target(app(1001, svc(1, "web", images.http, config=config))))
        before = first.wait_status(1001, "web", "Running")["containerId"]
        assert first.terminate() == 0
        again = AgentProcess(tmp_path / "agent").start()
        try:
            assert again.wait_status(1001, "web", "Running")["containerId"] == before
            assert [c["Id"] for c in service_containers(1001, "web")] == [before]
        finally:
            again.stop()
    finally:
        first.stop()

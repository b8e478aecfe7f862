"""The real agent on the real engine: jobs that finish (restart "no"/"on-failure", exit 0)
and containers disconnected from their networks by hand."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.integration import dockerkit
from tests.integration.agent_process import (
    AgentProcess,
    app,
    service_containers,
    svc,
    target,
)
from tests.integration.dockerkit import ImageSet
from tests.integration.waiting import wait_for

NETWORK = "1001_default"


def only_container(name: str) -> dict[str, Any]:
    (c,) = service_containers(1001, name)
    return c


@pytest.mark.parametrize("restart", ["no", "on-failure"])
def test_an_init_job_that_exits_0_is_done_and_its_dependant_starts(
    agent: AgentProcess, images: ImageSet, restart: str
) -> None:
    init = svc(1, "init", images.v1, config={"command": ["true"], "restart": restart})
    web = svc(2, "web", images.v1, config={"depends_on": ["init"]})
    agent.set_target(target(app(1001, init, web)))
    agent.wait_status(1001, "web", "Running")
    state = agent.wait_status(1001, "init", "Exited")
    assert (state["exitCode"], state["error"]) == (0, None)
    before = only_container("init")

    # Later passes (here: one that starts another service) leave the finished job alone.
    agent.set_target(target(app(1001, init, web, svc(3, "extra", images.v1))))
    agent.wait_status(1001, "extra", "Running")
    after = only_container("init")
    assert after["Id"] == before["Id"]
    assert after["State"]["StartedAt"] == before["State"]["StartedAt"], "the job ran again"
    assert after["State"]["Status"] == "exited"
    assert agent.service_state(1001, "init")["status"] == "Exited"
    # A finished job counts as applied.
    wait_for(
        lambda: agent.get("/v2/state/status").json()["appState"] == "applied",
        30,
        0.2,
        "the device never reported its target applied",
    )


def test_a_restart_no_service_stopped_by_its_target_runs_again_even_across_an_agent_restart(
    tmp_path: Path, images: ImageSet, docker_clean: None
) -> None:
    config = {"restart": "no"}  # its process exits 0 on SIGTERM: as a finished job would
    running = target(app(1001, svc(1, "main", images.v1, config=config)))
    stopped = target(app(1001, svc(1, "main", images.v1, config=config, state="stopped")))
    first = AgentProcess(tmp_path / "agent").start()
    try:
        first.set_target(running)
        cid = first.wait_status(1001, "main", "Running")["containerId"]
        first.set_target(stopped)
        assert first.wait_status(1001, "main", "Stopped")["exitCode"] == 0
        assert first.terminate() == 0
    finally:
        first.stop()
    again = AgentProcess(tmp_path / "agent").start()
    try:
        again.wait_status(1001, "main", "Stopped")  # a pass has seen it under its target
        again.set_target(running)
        assert again.wait_status(1001, "main", "Running")["containerId"] == cid
    finally:
        again.stop()


def test_a_container_disconnected_from_its_network_is_not_running_until_reconnected(
    tmp_path: Path, images: ImageSet, docker_clean: None
) -> None:
    # A long interval: between two passes the disconnection shows in the reported status.
    agent = AgentProcess(tmp_path / "agent", interval_ms=600_000).start()
    try:
        agent.set_target(target(app(1001, svc(1, "web", images.v1))))
        cid = agent.wait_status(1001, "web", "Running")["containerId"]
        dockerkit.docker("network", "disconnect", NETWORK, cid)

        def reported() -> str:
            return str(agent.get("/v1/services/web-1").json()["status"])

        wait_for(lambda: reported() == "Updating", 30, 0.2, "still reported Running detached")
        # The next pass (a target change wakes it) reconnects it, with its service name alias.
        agent.set_target(target(app(1001, svc(1, "web", images.v1), svc(2, "more", images.v1))))
        agent.wait_status(1001, "more", "Running")
        attached = wait_for(
            lambda: only_container("web")["NetworkSettings"]["Networks"].get(NETWORK),
            60,
            0.2,
            "the container was not reconnected",
        )
        assert "web" in attached["Aliases"]
        assert only_container("web")["Id"] == cid  # reconnected, not recreated
        wait_for(lambda: reported() == "Running", 30, 0.2, "not reported Running again")
    finally:
        agent.stop()

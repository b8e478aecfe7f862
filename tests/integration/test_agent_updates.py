"""Update strategies observed on the engine's own event stream, and crash safety (kill -9)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

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


def engine_events(since: float, until: float) -> list[dict[str, Any]]:
    out = dockerkit.docker(
        "events",
        "--since",
        f"{since:.3f}",
        "--until",
        f"{until:.3f}",
        "--format",
        "{{json .}}",
        "--filter",
        "type=container",
        "--filter",
        "type=image",
    ).stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def summarise(
    events: list[dict[str, Any]], old_image: str, new_image: str, old_image_id: str
) -> list[str]:
    """Reduce the event stream to what the strategies promise about ordering."""
    names = {old_image: "old", new_image: "new"}
    summary = []
    for e in events:
        action, attrs = e["Action"], e["Actor"].get("Attributes", {})
        if e["Type"] == "image" and action == "pull" and e["Actor"]["ID"] in names:
            summary.append(f"pull {names[e['Actor']['ID']]}")
        elif e["Type"] == "image" and action == "untag" and e["Actor"]["ID"] == old_image_id:
            # The engine names the image by its id here, not by the reference removed.
            summary.append("delete-image old")
        elif (
            e["Type"] == "container"
            and action in ("start", "destroy")
            and attrs.get("image") in names
        ):
            summary.append(f"{action} {names[attrs['image']]}")
    return summary


def update_and_observe(agent: AgentProcess, images: ImageSet, strategy: str) -> list[str]:
    labels = {"io.iotistic.update-strategy": strategy}
    agent.set_target(target(app(1001, svc(1, "main", images.v1, config={"labels": labels}))))
    old = agent.wait_status(1001, "main", "Running")["containerId"]
    dockerkit.remove_local_image(images.v2)  # the update must really download
    old_image_id = dockerkit.docker("image", "inspect", "-f", "{{.Id}}", images.v1).stdout.strip()
    since = time.time()  # events of the first rollout are not part of the update
    agent.set_target(target(app(1001, svc(1, "main", images.v2, config={"labels": labels}))))

    def replaced() -> bool:
        ids = [c["Id"] for c in service_containers(1001, "main")]
        s = agent.service_state(1001, "main")
        return s["status"] == "Running" and len(ids) == 1 and ids[0] != old

    wait_for(replaced, 60, 0.2, f"{strategy}: update did not complete; log:\n{agent.log()[-2000:]}")
    return summarise(engine_events(since, time.time() + 0.5), images.v1, images.v2, old_image_id)


def test_download_then_kill_pulls_before_the_old_container_goes(
    agent: AgentProcess, images: ImageSet
) -> None:
    assert update_and_observe(agent, images, "download-then-kill") == [
        "pull new",
        "destroy old",
        "start new",
    ]


def test_kill_then_download_removes_the_old_container_before_pulling(
    agent: AgentProcess, images: ImageSet
) -> None:
    assert update_and_observe(agent, images, "kill-then-download") == [
        "destroy old",
        "pull new",
        "start new",
    ]


def test_delete_then_download_deletes_the_old_image_too(
    agent: AgentProcess, images: ImageSet
) -> None:
    assert update_and_observe(agent, images, "delete-then-download") == [
        "destroy old",
        "delete-image old",
        "pull new",
        "start new",
    ]
    assert not dockerkit.image_present(images.v1)


def test_hand_over_starts_the_new_container_before_the_old_one_goes(
    agent: AgentProcess, images: ImageSet
) -> None:
    assert update_and_observe(agent, images, "hand-over") == [
        "pull new",
        "start new",
        "destroy old",
    ]


def five_service_target(images: ImageSet) -> dict[str, Any]:
    return target(
        app(
            1001,
            svc(1, "web", images.http, config={"volumes": ["www:/www-data"]}),
            svc(2, "a", images.v1, config={"networks": ["backend"], "volumes": ["data:/data"]}),
            svc(3, "b", images.v2, config={"networks": ["backend"]}),
            svc(4, "c", images.v1, config={"depends_on": ["web"]}),
            svc(5, "d", images.v2, state="paused"),
        )
    )


def assert_converged_once(agent: AgentProcess) -> None:
    expected = {"web": "Running", "a": "Running", "b": "Running", "c": "Running", "d": "Paused"}

    def converged() -> bool:
        state = agent.apps_state()["1001"]["services"]
        return {n: s["status"] for n, s in state.items()} == expected

    wait_for(converged, 90, 0.3, f"no convergence after restart; log:\n{agent.log()[-3000:]}")
    per_service: dict[str, int] = {}
    for c in managed_containers(1001):
        name = c["Config"]["Labels"]["io.iotistic.service-name"]
        per_service[name] = per_service.get(name, 0) + 1
    assert per_service == dict.fromkeys(expected, 1), "duplicate or missing containers"
    nets = dockerkit.docker(
        "network", "ls", "--format", "{{.Name}}", "--filter", "label=io.iotistic.managed=true"
    ).stdout.split()
    vols = dockerkit.docker(
        "volume", "ls", "--format", "{{.Name}}", "--filter", "label=io.iotistic.managed=true"
    ).stdout.split()
    assert sorted(nets) == ["1001_backend", "1001_default"]
    assert sorted(vols) == ["1001_data", "1001_www"]


@pytest.mark.parametrize("moment", ["during-pulls", "after-first-container"])
def test_kill_9_mid_apply_then_restart_converges_without_duplicates_or_orphans(
    tmp_path: Path, images: ImageSet, docker_clean: None, moment: str
) -> None:
    for ref in (images.v1, images.v2, images.http):
        dockerkit.remove_local_image(ref)
    agent = AgentProcess(tmp_path / "agent").start()
    try:
        agent.set_target(five_service_target(images))
        if moment == "after-first-container":
            wait_for(lambda: managed_containers(1001), 60, 0.02, "no container was created")
        agent.kill9()
        agent.start()
        assert_converged_once(agent)
    finally:
        agent.stop()

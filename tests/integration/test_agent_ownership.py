"""Two agents on one real engine: an agent without a target removes nothing, each agent
touches only what carries its own device UUID, and containers of an earlier release (no
UUID label) are adopted by the agent whose database made them, by no other."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from iotistic_agent.orchestrator.normalise import normalise_target
from iotistic_contracts import parse_target_state

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
from tests.unit.ownership_support import old_release_database

DEVICE_LABEL = "io.iotistic.device-uuid"


@pytest.fixture
def second(tmp_path: Path, images: ImageSet, docker_clean: None) -> Iterator[AgentProcess]:
    """Another agent on the same engine, with its own (new) data directory."""
    proc = AgentProcess(tmp_path / "second")
    yield proc
    proc.stop()


def ids(app_id: int) -> set[str]:
    return {c["Id"] for c in managed_containers(app_id) if c["State"]["Status"] == "running"}


def run_and_remove_an_app_of_its_own(agent: AgentProcess, images: ImageSet) -> None:
    """App 1002 on the agent, then a stated "no apps": it removes what it owns."""
    agent.set_target(target(app(1002, svc(1, "api", images.v1))))
    agent.wait_status(1002, "api", "Running")
    agent.set_target(target())
    wait_for(lambda: not managed_containers(1002), 60, 0.2, "its own app was not removed")


def labelled(kind: str, app_id: int) -> list[str]:
    args = [kind, "ls", "-q", "--filter", f"label=io.iotistic.app-id={app_id}"]
    return dockerkit.docker(*args).stdout.split()


def test_an_agent_without_a_target_removes_nothing_and_agents_never_touch_each_others_apps(
    agent: AgentProcess, second: AgentProcess, images: ImageSet
) -> None:
    first_app = target(app(1001, svc(1, "web", images.v1, config={"volumes": ["data:/d"]})))
    agent.set_target(first_app)
    agent.wait_status(1001, "web", "Running")
    before = ids(1001)
    (web,) = service_containers(1001, "web")
    assert web["Config"]["Labels"][DEVICE_LABEL] == agent.get("/v1/device").json()["uuid"]

    second.start()  # a new database: version 0, no target yet
    wait_for(
        lambda: "no target state stored yet" in second.log(),
        30,
        0.2,
        "the second agent never ran a pass",
    )
    assert ids(1001) == before

    run_and_remove_an_app_of_its_own(second, images)
    assert ids(1001) == before
    assert labelled("volume", 1001) and labelled("network", 1001)

    # The same app id as the first agent's: refused, and the first one's app is left alone.
    second.set_target(target(app(1001, svc(1, "web", images.v1, config={"volumes": ["data:/d"]}))))
    wait_for(
        lambda: "belongs to another device" in second.log(),
        60,
        0.2,
        "the clash was not reported",
    )
    assert ids(1001) == before
    assert agent.service_state(1001, "web")["status"] == "Running"


def old_release_container(wanted: dict[str, Any], image: str) -> str:
    """The container an earlier release made for the target's only service: the agent's
    labels (configuration hash included), no device UUID."""
    (spec,) = normalise_target(parse_target_state(wanted))[1001].services
    labels = {
        "io.iotistic.managed": "true",
        "io.iotistic.app-id": "1001",
        "io.iotistic.app-name": spec.app_name,
        "io.iotistic.service-id": str(spec.service_id),
        "io.iotistic.service-name": spec.service_name,
        "io.iotistic.config-hash": spec.config_hash,
    }
    flags = [arg for key, value in labels.items() for arg in ("--label", f"{key}={value}")]
    dockerkit.docker("pull", image)
    return dockerkit.docker(
        "run", "-d", "--name", spec.container_name, *flags, image
    ).stdout.strip()


def test_containers_of_an_earlier_release_are_adopted_by_the_agent_that_made_them_only(
    tmp_path: Path, images: ImageSet, docker_clean: None, second: AgentProcess
) -> None:
    wanted = target(app(1001, svc(1, "main", images.v1)))
    legacy = old_release_container(wanted, images.v1)

    # A new agent with a target of its own never takes the unlabelled container.
    second.start()
    run_and_remove_an_app_of_its_own(second, images)
    assert ids(1001) == {legacy}

    # The upgraded agent (its database predates the label) adopts it as it is.
    device = str(uuid.uuid4())
    old_release_database(tmp_path / "upgraded" / "device.sqlite", device)
    upgraded = AgentProcess(tmp_path / "upgraded").start()
    try:
        upgraded.set_target(wanted)
        assert upgraded.wait_status(1001, "main", "Running")["containerId"] == legacy
        assert [c["Id"] for c in service_containers(1001, "main")] == [legacy]
        # Its next container of the service carries the device label.
        changed = target(app(1001, svc(1, "main", images.v1, config={"environment": {"V": "2"}})))
        upgraded.set_target(changed)
        new = wait_for(
            lambda: [c for c in service_containers(1001, "main") if c["Id"] != legacy],
            60,
            0.2,
            "the service was not recreated",
        )
        assert new[0]["Config"]["Labels"][DEVICE_LABEL] == device
    finally:
        upgraded.stop()

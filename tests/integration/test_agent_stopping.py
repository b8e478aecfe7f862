"""How the real agent stops containers on the real engine: each with its own grace period,
a batch concurrently, dependants first. Timings come from the engine's events (SIGTERM,
SIGKILL, exit), so a loaded machine does not blur them."""

from __future__ import annotations

import time

import pytest

from tests.integration.agent_process import (
    AgentProcess,
    app,
    managed_containers,
    svc,
    target,
)
from tests.integration.dockerkit import ImageSet
from tests.integration.engine_events import container_events, first
from tests.integration.waiting import wait_for

# busybox `sleep` as PID 1 has no SIGTERM handler, so the kernel ignores the signal: the
# container only goes at the SIGKILL that ends its grace period.
IGNORES_SIGTERM = ["sleep", "3600"]
SIGTERM, SIGKILL = "15", "9"


def stubborn(
    service_id: int, name: str, image: str, grace: str, **config: object
) -> dict[str, object]:
    return svc(
        service_id,
        name,
        image,
        config={"command": IGNORES_SIGTERM, "stop_grace_period": grace, **config},
    )


NAMES = ("a", "b", "c")


def three_stubborn(image: str) -> dict[str, object]:
    """Three independent services ignoring SIGTERM, with a 4 s grace period each."""
    return target(app(1001, *(stubborn(i, n, image, "4s") for i, n in enumerate(NAMES, 1))))


def running_ids(agent: AgentProcess, *names: str) -> dict[str, str]:
    return {name: agent.wait_status(1001, name, "Running")["containerId"] for name in names}


def wait_all_gone(timeout: float = 90) -> None:
    wait_for(lambda: not managed_containers(1001), timeout, 0.2, "containers were not removed")


@pytest.mark.parametrize("grace_s", [3, 12])
def test_removing_a_service_sends_sigkill_after_its_own_grace_period(
    agent: AgentProcess, images: ImageSet, grace_s: int
) -> None:
    keep = svc(1, "keep", images.v1)
    agent.set_target(target(app(1001, keep, stubborn(2, "slow", images.v1, f"{grace_s}s"))))
    cid = running_ids(agent, "slow")["slow"]
    since = time.time()
    agent.set_target(target(app(1001, keep)))  # the service leaves the target
    wait_for(
        lambda: [c for c in managed_containers(1001) if c["Id"] == cid] == [],
        grace_s + 60,
        0.2,
        "the removed service's container is still there",
    )
    events = container_events(since)
    grace = first(events, cid, "kill", SIGKILL) - first(events, cid, "kill", SIGTERM)
    # Before, every removal waited Docker's default of 10 s whatever the target said.
    assert grace_s - 0.2 <= grace < grace_s + 3, grace


def test_removing_an_app_of_three_services_that_ignore_sigterm_takes_one_grace_period(
    agent: AgentProcess, images: ImageSet
) -> None:
    agent.set_target(three_stubborn(images.v1))
    ids = running_ids(agent, *NAMES)
    since = time.time()
    agent.set_target(target())
    wait_all_gone()
    events = container_events(since)
    terms = [first(events, cid, "kill", SIGTERM) for cid in ids.values()]
    exits = [first(events, cid, "die") for cid in ids.values()]
    # Sequential stops would take three grace periods (12 s) and space the SIGTERMs 4 s apart.
    assert max(terms) - min(terms) < 2, terms
    assert max(exits) - min(terms) < 4 + 3, (terms, exits)


def test_dependants_stop_before_the_service_they_depend_on(
    agent: AgentProcess, images: ImageSet
) -> None:
    agent.set_target(
        target(
            app(
                1001,
                stubborn(1, "db", images.v1, "3s"),
                stubborn(2, "api", images.v1, "3s", depends_on=["db"]),
                stubborn(3, "worker", images.v1, "3s"),
            )
        )
    )
    ids = running_ids(agent, "db", "api", "worker")
    since = time.time()
    agent.set_target(target())
    wait_all_gone()
    events = container_events(since)
    api_term, worker_term = (first(events, ids[n], "kill", SIGTERM) for n in ("api", "worker"))
    assert abs(api_term - worker_term) < 2, "independent services stop together"
    assert first(events, ids["db"], "kill", SIGTERM) >= first(events, ids["api"], "die")


def test_an_update_of_several_services_stops_the_old_containers_together(
    agent: AgentProcess, images: ImageSet
) -> None:
    agent.set_target(three_stubborn(images.v1))
    old = running_ids(agent, *NAMES)
    since = time.time()
    agent.set_target(three_stubborn(images.v2))

    def all_replaced() -> bool:
        states = [agent.service_state(1001, n) for n in NAMES]
        return all(
            s["status"] == "Running" and s["containerId"] != old[s["serviceName"]] for s in states
        )

    wait_for(all_replaced, 120, 0.3, "the services were not all replaced")
    events = container_events(since)
    terms = [first(events, cid, "kill", SIGTERM) for cid in old.values()]
    assert max(terms) - min(terms) < 2, terms

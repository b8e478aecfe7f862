"""`GET /v1/healthy` of the real agent follows the engine and the database as they fail and
come back (issue 12, item 7), and nothing runs differently meanwhile.

The agent reaches the real engine through a unix-socket proxy the test cuts and restores
(tests/integration/socket_proxy.py). The reconciliation interval is a minute, so an answer
that waited for the next pass (as it used to: 200 for ~30 s of outage, 503 for ~10 s after)
cannot pass the bounds below, which leave a busy machine ample room over the ~1 s the agent
needs.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.agent_process import AgentProcess, app, service_containers, svc, target
from tests.integration.dockerkit import ImageSet
from tests.integration.socket_proxy import UnixSocketProxy, engine_socket
from tests.integration.waiting import wait_for

SEEN_WITHIN_S = 5.0  # the agent's own bound is about a second
INTERVAL_MS = "60000"


def health(agent: AgentProcess) -> tuple[int, dict[str, Any] | str]:
    response = httpx.get(f"{agent.url}/v1/healthy", timeout=5)
    body = response.text if response.status_code == 200 else response.json()
    return response.status_code, body


def wait_health(agent: AgentProcess, status: int, timeout: float, message: str) -> Any:
    """Poll /v1/healthy until it answers `status`; returns the body of that answer."""
    reached = wait_for(
        lambda: (answer := health(agent))[0] == status and answer, timeout, 0.05, message
    )
    return reached[1]


def running(app_id: int, name: str) -> list[str]:
    return [c["Id"] for c in service_containers(app_id, name) if c["State"]["Status"] == "running"]


@pytest.fixture
def proxy(tmp_path: Path) -> Iterator[UnixSocketProxy]:
    front = UnixSocketProxy(tmp_path / "engine.sock", engine_socket()).start()
    yield front
    front.close()


@pytest.fixture
def proxied_agent(
    tmp_path: Path, proxy: UnixSocketProxy, docker_clean: None
) -> Iterator[AgentProcess]:
    agent = AgentProcess(
        tmp_path / "agent", interval_ms=int(INTERVAL_MS), DOCKER_HOST=proxy.url
    ).start()
    yield agent
    agent.stop()


def test_healthy_follows_an_engine_outage_within_seconds(
    proxied_agent: AgentProcess, proxy: UnixSocketProxy, images: ImageSet
) -> None:
    agent = proxied_agent
    agent.set_target(target(app(1001, svc(1, "main", images.v1))))
    agent.wait_status(1001, "main", "Running")
    before = running(1001, "main")
    assert health(agent) == (200, "OK")

    proxy.cut()
    body = wait_health(agent, 503, SEEN_WITHIN_S, "/v1/healthy still says OK, engine gone")
    assert body["error"] == "engine_unavailable"
    assert "container engine unavailable" in body["message"]
    assert {c["name"]: c["ok"] for c in body["checks"]} == {
        "engine": False,
        "database": True,
        "disk": True,
    }
    assert agent.get("/v1/device").json()["engine"] == {"reachable": False}

    proxy.restore()
    assert wait_health(agent, 200, SEEN_WITHIN_S, "/v1/healthy still fails, engine back") == "OK"
    assert agent.get("/v1/device").json()["engine"] == {"reachable": True}
    assert running(1001, "main") == before  # the outage changed nothing on the engine


@pytest.fixture
def immutable() -> Iterator[list[Path]]:
    """Files made immutable (chattr +i: no process, root included, may write to them, even
    through a descriptor opened before), released again whatever happens."""
    paths: list[Path] = []
    yield paths
    for path in paths:
        subprocess.run(["chattr", "-i", str(path)], check=False)


def test_healthy_fails_while_the_database_cannot_be_written(
    agent: AgentProcess, immutable: list[Path]
) -> None:
    assert health(agent) == (200, "OK")
    # The database and its write-ahead log: like a file system remounted read-only.
    files = [agent.database, agent.database.with_name(agent.database.name + "-wal")]
    immutable.extend(files)
    subprocess.run(["chattr", "+i", *map(str, files)], check=True)
    # The write probe runs at most every 5 s: a generous bound over that.
    body = wait_health(agent, 503, 30, "/v1/healthy still says OK with the database read-only")
    assert body["error"] == "database_unwritable"
    assert f"cannot write {agent.database}" in body["message"]
    assert {c["name"]: c["ok"] for c in body["checks"]}["database"] is False

    subprocess.run(["chattr", "-i", *map(str, files)], check=True)
    assert wait_health(agent, 200, 30, "/v1/healthy did not recover") == "OK"

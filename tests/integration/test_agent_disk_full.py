"""A real full disk under the agent's data directory (issue 12, item 9): a new target and a
config change are answered 507 naming the disk, nothing is stored or changed, the running
containers stay, `/v1/healthy` says so; once there is room again everything works.

The data directory is a small tmpfs the test mounts (as root, as the whole suite runs) and
fills with a file until the kernel refuses another byte.
"""

from __future__ import annotations

import errno
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.agent_process import AgentProcess, app, service_containers, svc, target
from tests.integration.dockerkit import ImageSet
from tests.integration.waiting import wait_for

SIZE = "16m"


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "small-disk"
    mount.mkdir()
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={SIZE},mode=0700", "tmpfs", str(mount)], check=True
    )
    try:
        yield mount
    finally:
        subprocess.run(["umount", "--lazy", str(mount)], check=False)


@pytest.fixture
def disk_agent(tmp_path: Path, small_disk: Path, docker_clean: None) -> Iterator[AgentProcess]:
    """The agent with its database (and so its data directory) on the small disk; its own
    output goes elsewhere, so that the test can still read it when the disk is full."""
    agent = AgentProcess(tmp_path / "agent", DATABASE_PATH=str(small_disk / "device.sqlite"))
    agent.start()
    yield agent
    agent.stop()


def headers(disk: Path) -> dict[str, str]:
    return {"Authorization": f"Bearer {(disk / 'device-api.key').read_text().strip()}"}


def fill(disk: Path) -> Path:
    """Write one file until the file system is full (ENOSPC); returns it."""
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        for size in (1024 * 1024, 4096, 1):
            try:
                while os.write(fd, b"\0" * size):
                    pass
            except OSError as exc:
                assert exc.errno == errno.ENOSPC, exc
    finally:
        os.close(fd)
    return filler


def running(app_id: int, name: str) -> list[str]:
    return [c["Id"] for c in service_containers(app_id, name) if c["State"]["Status"] == "running"]


def test_a_full_disk_is_a_507_naming_it_and_changes_nothing(
    disk_agent: AgentProcess, small_disk: Path, images: ImageSet
) -> None:
    agent, auth = disk_agent, headers(small_disk)
    api = httpx.Client(base_url=agent.url, headers=auth, timeout=15)
    first = target(app(1001, svc(1, "main", images.v1)))
    assert api.post("/v2/local/target-state", json=first).status_code == 200
    wait_for(lambda: running(1001, "main"), 60, 0.2, f"never ran; log:\n{agent.log()[-3000:]}")
    before = running(1001, "main")
    level = api.get("/v1/config/LOG_LEVEL").json()["value"]

    filler = fill(small_disk)

    second = target(app(1001, svc(1, "main", images.v2)))
    refused = api.post("/v2/local/target-state", json=second)
    assert refused.status_code == 507, refused.text
    body: dict[str, Any] = refused.json()
    assert body["error"] == "insufficient_storage"
    assert str(small_disk) in body["message"] and "full" in body["message"]
    config = api.put("/v1/config/LOG_LEVEL", json={"value": "error"})
    assert config.status_code == 507, config.text
    assert str(small_disk) in config.json()["message"]

    # Nothing changed: the stored target, the configuration, the containers.
    stored = api.get("/v2/local/target-state")
    assert stored.headers["X-Target-Version"] == "1"
    assert stored.json()["apps"]["1001"]["services"][0]["imageName"] == images.v1
    assert api.get("/v1/config/LOG_LEVEL").json()["value"] == level
    assert running(1001, "main") == before
    health = httpx.get(f"{agent.url}/v1/healthy", timeout=15)
    assert health.status_code == 503
    checks = {c["name"]: c for c in health.json()["checks"]}
    assert not checks["disk"]["ok"] and str(small_disk) in checks["disk"]["message"]
    assert agent.proc is not None and agent.proc.poll() is None, "the agent died"

    filler.unlink()
    wait_for(
        lambda: httpx.get(f"{agent.url}/v1/healthy", timeout=15).status_code == 200,
        30,
        0.2,
        "still unhealthy with room on the disk again",
    )
    assert api.post("/v2/local/target-state", json=second).status_code == 200
    assert api.put("/v1/config/LOG_LEVEL", json={"value": "error"}).status_code == 200
    wait_for(
        lambda: (ids := running(1001, "main")) and ids != before,
        60,
        0.2,
        f"the update after the disk was freed never ran; log:\n{agent.log()[-3000:]}",
    )

"""The composition root: the agent starts its components in dependency order and stops
them in reverse order; a start that fails stops what was started and touches nothing."""

from __future__ import annotations

import asyncio
import os
import socket
import sqlite3
import subprocess
from pathlib import Path

import httpx
import pytest
from iotistic_agent.agent import Agent
from iotistic_agent.simulation.config import simulation_config

from tests.integration import dockerkit
from tests.integration.agent_process import AGENT, managed_containers
from tests.integration.dockerkit import MANAGED_LABEL, ImageSet
from tests.integration.waiting import wait_for_async


def environment(data_dir: Path, port: int) -> dict[str, str]:
    return {
        "DATABASE_PATH": str(data_dir / "device.sqlite"),
        "DEVICE_API_PORT": str(port),
        "RECONCILIATION_INTERVAL_MS": "1000",
    }


async def test_the_agent_stops_everything_it_started(tmp_path: Path, docker_clean: None) -> None:
    port = dockerkit.free_port()
    env = environment(tmp_path, port)
    agent = Agent(env, None, simulation_config({}))
    running = asyncio.create_task(agent.run())

    async def answers() -> bool:
        try:
            async with httpx.AsyncClient(timeout=1) as client:
                return (await client.get(f"http://127.0.0.1:{port}/ping")).text == "OK"
        except httpx.HTTPError:
            return False

    await wait_for_async(answers, 30, 0.05, "the agent never answered /ping")
    await wait_for_async(lambda: agent.reconciler.last_snapshot, 30, 0.05, "no pass ran")
    agent.stop()
    assert await asyncio.wait_for(running, 30) == "stop"
    # The Device API no longer listens, the engine client and the database are closed.
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0
    assert agent.engine._client is None
    with pytest.raises(sqlite3.ProgrammingError):
        agent.database.execute("SELECT 1")


def test_an_agent_that_cannot_listen_exits_without_touching_the_engine(
    tmp_path: Path, images: ImageSet, docker_clean: None
) -> None:
    # Someone else's managed container: an agent with no target would remove it.
    theirs = dockerkit.docker("create", "--label", MANAGED_LABEL, images.v1).stdout.strip()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = subprocess.run(
            [str(AGENT)],
            env={**os.environ, **environment(tmp_path, port)},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert proc.returncode == 1, proc.stderr
    assert f"the Device API cannot listen on 127.0.0.1:{port}" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert [c["Id"] for c in managed_containers()] == [theirs]

"""The real agent process: lazy import of cryptography, automatic provisioning at start-up,
and REQUIRE_PROVISIONING holding the reconciler back until the device is provisioned.

No Docker engine is needed: DOCKER_HOST points at a socket that does not exist, so a running
reconciler shows itself by logging "container engine unavailable".
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from iotistic_agent.store.db import open_database
from iotistic_agent.store.device import DeviceStore
from provisioning_support import (
    DEVICE_API_KEY,
    MQTT_PASSWORD,
    PROVISIONING_KEY,
    FakeCloud,
    free_port,
    running_cloud,
)
from test_provisioning_store import registration

from tests.integration.waiting import wait_for_async

ENGINE_LOG = "container engine unavailable"
SECRETS = (PROVISIONING_KEY, DEVICE_API_KEY, MQTT_PASSWORD)


class Agent:
    """One `python -X importtime -m iotistic_agent` process with its own data folder."""

    def __init__(self, data_dir: Path, **env: str) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.stderr = data_dir / "agent.stderr"
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "DATABASE_PATH": str(data_dir / "device.sqlite"),
            "DEVICE_API_PORT": str(self.port),
            "DOCKER_HOST": f"unix://{data_dir}/no-docker.sock",
            "RECONCILIATION_INTERVAL_MS": "200",
            **env,
        }
        self.proc: asyncio.subprocess.Process | None = None
        self.client = httpx.AsyncClient(base_url=f"http://127.0.0.1:{self.port}", timeout=20)

    async def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with self.stderr.open("wb") as err:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-X",
                "importtime",
                "-m",
                "iotistic_agent",
                env=self.env,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=err,
            )
        await self.until(self._answers, "the agent did not answer /ping")
        key = (self.data_dir / "device-api.key").read_text().strip()
        self.client.headers["Authorization"] = f"Bearer {key}"

    async def _answers(self) -> bool:
        assert self.proc is not None
        if self.proc.returncode is not None:
            raise AssertionError(f"agent exited: {self.stderr.read_text(errors='replace')}")
        try:
            return (await self.client.get("/ping")).text == "OK"
        except httpx.HTTPError:
            return False

    async def until(self, condition: Any, what: str, within_s: float = 20.0) -> None:
        try:
            await wait_for_async(condition, within_s, 0.05, what)
        except AssertionError as exc:
            raise AssertionError(f"{exc}; stderr:\n{self.stderr.read_text()[-3000:]}") from None

    async def status(self) -> dict[str, Any]:
        answer: dict[str, Any] = (await self.client.get("/v1/provision")).json()
        return answer

    async def log_messages(self) -> list[str]:
        response = await self.client.get("/v1/logs", params={"n": 2000})
        return [json.loads(line)["message"] for line in response.text.splitlines() if line]

    async def logged(self, text: str) -> bool:
        return any(text in m for m in await self.log_messages())

    async def stop(self) -> str:
        """SIGTERM, wait, and return everything the process wrote on stderr."""
        await self.client.aclose()
        if self.proc is not None and self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.proc.wait(), 20)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        return self.stderr.read_text(errors="replace")


def imported(stderr: str, module: str) -> bool:
    """Whether `-X importtime` lists `module` (or one of its submodules)."""
    names = (line.rsplit("|", 1)[-1].strip() for line in stderr.splitlines() if "|" in line)
    return any(name == module or name.startswith(module + ".") for name in names)


@pytest.fixture
async def cloud() -> AsyncIterator[FakeCloud]:
    async with running_cloud() as fake:
        yield fake


async def test_an_agent_without_a_provisioning_key_never_loads_cryptography(
    tmp_path: Path,
) -> None:
    agent = Agent(tmp_path, CLOUD_API_ENDPOINT="http://127.0.0.1:9")
    try:
        await agent.start()
        assert (await agent.status())["provisioned"] is False
        # Without REQUIRE_PROVISIONING the reconciler runs at once (local mode).
        await agent.until(lambda: agent.logged(ENGINE_LOG), "the reconciler did not run")
    finally:
        stderr = await agent.stop()
    assert imported(stderr, "iotistic_agent.provisioning.service")
    assert not imported(stderr, "cryptography")
    assert not imported(stderr, "iotistic_contracts.provisioning")


async def test_a_provisioned_agent_never_loads_cryptography(tmp_path: Path) -> None:
    devices = DeviceStore(open_database(tmp_path / "device.sqlite"))
    devices.ensure_identity()
    devices.save_registration(registration(api_endpoint="http://127.0.0.1:9"))
    agent = Agent(
        tmp_path,
        PROVISIONING_API_KEY=PROVISIONING_KEY,
        CLOUD_API_ENDPOINT="http://127.0.0.1:9",
        REQUIRE_PROVISIONING="true",
    )
    try:
        await agent.start()
        assert (await agent.status())["provisioned"] is True
        await agent.until(lambda: agent.logged(ENGINE_LOG), "the reconciler did not run")
    finally:
        stderr = await agent.stop()
    assert not imported(stderr, "cryptography")


async def test_the_agent_provisions_itself_from_the_environment(
    tmp_path: Path, cloud: FakeCloud
) -> None:
    agent = Agent(
        tmp_path,
        PROVISIONING_API_KEY=PROVISIONING_KEY,
        CLOUD_API_ENDPOINT=cloud.url,
        DEVICE_NAME="pi-7",
        DEVICE_TYPE="edge-gateway",
        REQUIRE_PROVISIONING="true",
    )
    try:
        await agent.start()

        async def provisioned() -> bool:
            return bool((await agent.status())["provisioned"])

        await agent.until(provisioned, "the agent did not provision itself")
        status = await agent.status()
        assert (status["deviceName"], status["deviceType"]) == ("pi-7", "edge-gateway")
        await agent.until(lambda: agent.logged(ENGINE_LOG), "the reconciler did not start")
        messages = "\n".join(await agent.log_messages())
    finally:
        stderr = await agent.stop()
    assert imported(stderr, "cryptography")  # the probe does see it when it is loaded
    for secret in SECRETS:
        assert secret not in stderr and secret not in messages


async def test_require_provisioning_holds_the_reconciler_until_provisioned(
    tmp_path: Path, cloud: FakeCloud
) -> None:
    agent = Agent(tmp_path, REQUIRE_PROVISIONING="true")
    try:
        await agent.start()
        await agent.until(
            lambda: agent.logged("REQUIRE_PROVISIONING is set"), "no word about the wait"
        )
        # A failed attempt first: a round trip long enough for an ungated reconciler to log.
        dead = f"http://127.0.0.1:{free_port()}"
        body = {"provisioningApiKey": PROVISIONING_KEY, "apiEndpoint": dead}
        assert (await agent.client.post("/v1/provision", json=body)).status_code == 502
        assert (await agent.client.get("/v1/provision")).status_code == 200  # API is up
        assert not await agent.logged(ENGINE_LOG)

        body["apiEndpoint"] = cloud.url
        answer = await agent.client.post("/v1/provision", json=body)
        assert answer.status_code == 200, answer.text
        await agent.until(lambda: agent.logged(ENGINE_LOG), "the reconciler did not start")
    finally:
        await agent.stop()

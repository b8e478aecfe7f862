"""iotctl provision / provision status / deprovision against a real Device API and fake cloud.

The Device API and the fake cloud run on an event loop in a background thread, since iotctl's
HTTP client is synchronous; iotctl runs through its real entry point, `main()`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import io
import json
import sys
import threading
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from api_support import KEY, api_context
from iotctl.commands.provisioning import NOT_AVAILABLE
from iotctl.main import main
from iotistic_agent.device_api.app import create_app
from iotistic_agent.engine.memory import MemoryEngine
from iotistic_agent.provisioning.service import Provisioner
from iotistic_agent.store.device import DeviceStore
from provisioning_support import (
    DEVICE_API_KEY,
    FAST,
    MQTT_PASSWORD,
    PROVISIONING_KEY,
    FakeCloud,
    error,
    start_cloud,
)

T = TypeVar("T")


@dataclasses.dataclass
class Agent:
    loop: asyncio.AbstractEventLoop
    cloud: FakeCloud
    devices: DeviceStore
    url: str

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(30)


@dataclasses.dataclass
class Result:
    code: int
    out: str
    err: str


@contextlib.contextmanager
def background_loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield loop
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


@pytest.fixture
def agent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Agent]:
    with background_loop() as loop:
        yield from _serve(loop, tmp_path, monkeypatch)


def _serve(
    loop: asyncio.AbstractEventLoop, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Agent]:
    async def start() -> tuple[Agent, list[TestServer]]:
        cloud = FakeCloud()
        cloud_server = await start_cloud(cloud)
        context = api_context(tmp_path, MemoryEngine())
        provisioner = Provisioner(
            context.devices, lambda: context.config.settings, tmp_path, backoff=FAST
        )
        app = create_app(dataclasses.replace(context, provisioner=provisioner), api_key=KEY)
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        url = str(server.make_url("")).rstrip("/")
        return Agent(loop, cloud, context.devices, url), [server, cloud_server]

    agent, servers = asyncio.run_coroutine_threadsafe(start(), loop).result(30)
    monkeypatch.setenv("DEVICE_API_URL", agent.url)
    monkeypatch.setenv("IOTCTL_API_KEY", KEY)
    try:
        yield agent
    finally:
        for server in servers:
            agent.run(server.close())


def iotctl(capsys: pytest.CaptureFixture[str], *args: str, stdin: str | None = None) -> Result:
    argv = sys.argv
    sys.argv = ["iotctl", *args]
    old_stdin = sys.stdin
    if stdin is not None:
        sys.stdin = io.StringIO(stdin)
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    finally:
        sys.argv = argv
        sys.stdin = old_stdin
    captured = capsys.readouterr()
    for secret in (PROVISIONING_KEY, DEVICE_API_KEY, MQTT_PASSWORD):
        assert secret not in captured.out + captured.err
    return Result(code, captured.out, captured.err)


def test_status_of_a_new_device(agent: Agent, capsys: pytest.CaptureFixture[str]) -> None:
    uuid = agent.devices.identity().uuid
    shown = iotctl(capsys, "provision", "status")
    assert shown.code == 0
    assert "not provisioned" in shown.out and uuid in shown.out
    state = json.loads(iotctl(capsys, "provision", "status", "--json").out)
    assert state["provisioned"] is False and state["uuid"] == uuid


def test_provision_status_and_deprovision(agent: Agent, capsys: pytest.CaptureFixture[str]) -> None:
    uuid = agent.devices.identity().uuid
    args = ("--api", agent.cloud.url, "--name", "pi-7", "--type", "edge-gateway")
    done = iotctl(capsys, "provision", PROVISIONING_KEY, *args)
    assert done.code == 0, done.err
    assert done.out == (
        f"device {uuid} provisioned with {agent.cloud.url} (device id dev-{uuid[:8]})\n"
    )
    seen = agent.cloud.registered[uuid].data
    assert (seen.deviceName, seen.deviceType) == ("pi-7", "edge-gateway")

    shown = iotctl(capsys, "provision", "status").out
    for expected in ("provisioned", f"dev-{uuid[:8]}", "pi-7", "edge-gateway", agent.cloud.url):
        assert expected in shown
    assert "mqtts://broker.test:8883" in shown

    again = iotctl(capsys, "provision", PROVISIONING_KEY, "--api", agent.cloud.url)
    assert again.code == 1 and "already provisioned" in again.err

    gone = iotctl(capsys, "deprovision")
    assert gone.code == 0
    assert gone.out == f"device {uuid} deprovisioned; it keeps its UUID and API key\n"
    again = iotctl(capsys, "deprovision")
    assert (again.code, again.err) == (1, "error: the device is not provisioned\n")


def test_the_key_can_come_from_stdin(agent: Agent, capsys: pytest.CaptureFixture[str]) -> None:
    done = iotctl(
        capsys, "provision", "-", "--api", agent.cloud.url, "--json", stdin=PROVISIONING_KEY + "\n"
    )
    assert done.code == 0, done.err
    assert json.loads(done.out)["provisioned"] is True


def test_the_clouds_refusal_is_the_message(
    agent: Agent, capsys: pytest.CaptureFixture[str]
) -> None:
    agent.cloud.key_exchange_failure = error(401, "provisioning key has expired")
    failed = iotctl(capsys, "provision", PROVISIONING_KEY, "--api", agent.cloud.url)
    assert failed.code == 1
    assert failed.err == "error: the cloud refused provisioning: provisioning key has expired\n"
    status = iotctl(capsys, "provision", "status").out
    assert "provisioning key has expired" in status  # the last error is shown


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("short-key", "--api", "http://127.0.0.1:9"), "16 to 256 characters"),
        ((PROVISIONING_KEY,), "no cloud API endpoint"),
        ((PROVISIONING_KEY, "--api", "cloud.example"), "http:// or https://"),
    ],
)
def test_bad_input_is_a_message_and_exit_1(
    agent: Agent, capsys: pytest.CaptureFixture[str], args: tuple[str, ...], message: str
) -> None:
    failed = iotctl(capsys, "provision", *args)
    assert failed.code == 1 and message in failed.err and failed.out == ""


def test_an_agent_without_the_routes_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    async def start() -> TestServer:
        server = TestServer(web.Application(), host="127.0.0.1")  # an old agent: no routes
        await server.start_server()
        return server

    with background_loop() as loop:
        server = asyncio.run_coroutine_threadsafe(start(), loop).result(10)
        monkeypatch.setenv("DEVICE_API_URL", str(server.make_url("")).rstrip("/"))
        monkeypatch.setenv("IOTCTL_API_KEY", KEY)
        try:
            for args in (
                ("provision", "status"),
                ("provision", PROVISIONING_KEY),
                ("deprovision",),
            ):
                failed = iotctl(capsys, *args)
                assert (failed.code, failed.err) == (1, f"error: {NOT_AVAILABLE}\n")
        finally:
            asyncio.run_coroutine_threadsafe(server.close(), loop).result(10)

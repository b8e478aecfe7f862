"""The Device API for an app's own services (issue 12, item 6b): scoped keys, what a service
is given, where the API listens, and what a scoped key may do."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from api_support import KEY, api_context
from hypothesis import given
from hypothesis import strategies as st
from iotistic_agent.device_api.app import create_app
from iotistic_agent.device_api.app_access import (
    ENV_ADDRESS,
    ENV_KEY,
    app_key,
    app_of_key,
    listen_addresses,
    service_environment,
)
from iotistic_agent.engine.docker_mapping import network_gateways
from iotistic_agent.engine.memory import MemoryEngine
from iotistic_agent.orchestrator.model import ServiceSpec

keys = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_", min_size=32, max_size=64)
app_ids = st.integers(min_value=0, max_value=2**63 - 1)


@given(device_key=keys, other=keys, app_id=app_ids, another_app=app_ids)
def test_a_scoped_key_names_its_app_and_only_the_device_key_it_came_from(
    device_key: str, other: str, app_id: int, another_app: int
) -> None:
    key = app_key(device_key, app_id)
    assert key == app_key(device_key, app_id)  # the same on every container creation
    assert app_of_key(device_key, key) == app_id
    if other != device_key:
        assert app_of_key(other, key) is None
    if another_app != app_id:
        forged = key.replace(f"app-{app_id}-", f"app-{another_app}-", 1)
        assert app_of_key(device_key, forged) is None
    assert app_of_key(device_key, device_key) is None
    assert device_key not in key


def spec(**fields: Any) -> ServiceSpec:
    base = ServiceSpec(
        app_id=1001,
        app_name="demo",
        service_id=1,
        service_name="sensor",
        image="reg/img:v1",
        networks=(("1001_default", ()),),
        labels=(("io.iotistic.features.device-api", "1"),),
    )
    return replace(base, **fields)


GATEWAYS = {"1001_default": "172.20.0.1", "1002_default": "172.21.0.1"}


def test_a_service_that_asks_gets_the_address_of_its_network_and_its_apps_key() -> None:
    env = service_environment(spec(), GATEWAYS, KEY, 48484)
    assert env[ENV_ADDRESS] == "http://172.20.0.1:48484"
    assert env[ENV_KEY] == app_key(KEY, 1001) and KEY not in env.values()
    assert env["IOTISTIC_APP_ID"] == "1001"
    balena = spec(labels=(("io.balena.features.supervisor-api", "true"),))
    assert service_environment(balena, GATEWAYS, KEY, 48484) == env


@pytest.mark.parametrize(
    ("fields", "address"),
    [
        ({"labels": ()}, None),
        ({"labels": (("io.iotistic.features.device-api", "0"),)}, None),
        ({"network_mode": "host", "networks": ()}, "http://127.0.0.1:48484"),
        ({"network_mode": "none", "networks": ()}, None),
        ({"networks": (("1001_other", ()),)}, None),  # a network with no gateway known
        ({"networks": (("1001_default", ()),)}, "http://172.20.0.1:48484"),
    ],
)
def test_what_a_service_is_given(fields: dict[str, Any], address: str | None) -> None:
    env = service_environment(spec(**fields), GATEWAYS, KEY, 48484)
    assert env.get(ENV_ADDRESS) == address


def test_an_ipv6_gateway_is_bracketed_in_the_address() -> None:
    env = service_environment(spec(), {"1001_default": "fd00::1"}, KEY, 48484)
    assert env[ENV_ADDRESS] == "http://[fd00::1]:48484"


def test_the_api_listens_only_where_a_service_asked_for_it() -> None:
    asking = spec()
    quiet = spec(app_id=1002, networks=(("1002_default", ()),), labels=())
    host = spec(service_name="h", network_mode="host", networks=())
    assert listen_addresses([asking, quiet, host], GATEWAYS) == {"172.20.0.1"}
    assert listen_addresses([quiet], GATEWAYS) == frozenset()


def test_gateways_come_from_the_networks_ipam_ipv4_first() -> None:
    listed = [
        {
            "Name": "1001_default",
            "IPAM": {"Config": [{"Subnet": "172.20.0.0/16", "Gateway": "172.20.0.1"}]},
        },
        {"Name": "dual", "IPAM": {"Config": [{"Gateway": "fd00::1"}, {"Gateway": "10.9.0.1"}]}},
        {"Name": "none-yet", "IPAM": {"Config": None}},
    ]
    assert network_gateways(listed) == {"1001_default": "172.20.0.1", "dual": "10.9.0.1"}


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[TestClient[Any, Any]]:
    context = api_context(tmp_path, MemoryEngine(registry={"reg/web:v1"}))
    service = {"serviceId": 1, "serviceName": "web", "imageName": "reg/web:v1"}
    apps = {str(a): {"appId": a, "appName": f"a{a}", "services": [service]} for a in (1001, 1002)}
    from iotistic_contracts import parse_target_state

    context.targets.save(parse_target_state({"apps": apps}), source="local")
    async with TestClient(TestServer(create_app(context, api_key=KEY))) as test_client:
        yield test_client


READING = {"timestamp": "2026-01-01T00:00:00Z", "value": 21.5, "unit": "C", "sensor_id": "t1"}


async def test_a_scoped_key_publishes_readings_and_reads_its_own_app_only(
    client: TestClient[Any, Any],
) -> None:
    scoped = {"Authorization": f"Bearer {app_key(KEY, 1001)}"}
    published = await client.post("/v1/sensors/temperature", json=READING, headers=scoped)
    # Let through to the route, which answers for itself (here: no broker, no detector).
    assert published.status == 409, await published.text()
    assert "MQTT is not configured" in (await published.json())["message"]
    own = await client.get("/v1/apps/1001", headers=scoped)
    assert own.status == 200 and (await own.json())["appId"] == 1001
    for method, path in [
        ("GET", "/v1/apps/1002"),
        ("GET", "/v1/device"),
        ("GET", "/v2/local/target-state"),
        ("POST", "/v2/local/target-state"),
        ("POST", "/v1/apps/1001/stop"),
        ("GET", "/v1/config"),
    ]:
        refused = await client.request(method, path, headers=scoped)
        body = await refused.json()
        assert (refused.status, body["error"]) == (403, "forbidden"), (method, path)
        assert "sensor readings" in body["message"]
    gone = {"Authorization": f"Bearer {app_key(KEY, 4242)}"}  # an app not in the target
    assert (await client.get("/v1/apps/4242", headers=gone)).status == 401
    other_device = {"Authorization": f"Bearer {app_key('x' * 43, 1001)}"}
    assert (await client.get("/v1/apps/1001", headers=other_device)).status == 401


def test_the_label_takes_true_or_false_only() -> None:
    from iotistic_contracts import TargetStateError, parse_target_state

    def with_label(value: str) -> dict[str, Any]:
        config = {"labels": {"io.iotistic.features.device-api": value}}
        service = {"serviceId": 1, "serviceName": "s", "imageName": "r/i:1", "config": config}
        return {"apps": {"1": {"appId": 1, "appName": "a", "services": [service]}}}

    parse_target_state(with_label("true"))
    with pytest.raises(TargetStateError, match="must be true or false"):
        parse_target_state(with_label("maybe"))


async def test_listeners_follow_the_networks_that_asked(tmp_path: Path) -> None:
    """Real sockets on loopback addresses standing in for gateways (Linux routes 127/8)."""
    import socket

    from aiohttp import web
    from iotistic_agent.device_api.app_listeners import AppNetworkListeners

    async def ping(_: web.Request) -> web.Response:
        return web.Response(text="OK")

    app = web.Application()
    app.router.add_get("/ping", ping)
    runner = web.AppRunner(app)
    await runner.setup()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    gateways = {"1001_default": "127.0.0.2", "1002_default": "127.0.0.3"}
    services = [spec()]
    listeners = AppNetworkListeners(
        runner, "127.0.0.1", port, lambda: _ready(gateways), lambda: services
    )
    try:
        await listeners.update()
        assert listeners.addresses == {"127.0.0.2"}
        with socket.create_connection(("127.0.0.2", port), timeout=5):
            pass
        services = []  # the service that asked is gone
        await listeners.update()
        assert listeners.addresses == frozenset()
        with (
            pytest.raises(ConnectionRefusedError),
            socket.create_connection(("127.0.0.2", port), timeout=5),
        ):
            pass
        wildcard = AppNetworkListeners(runner, "0.0.0.0", port, lambda: _ready(gateways), list)
        await wildcard.update()
        assert wildcard.addresses == frozenset()  # the main listener already covers them
    finally:
        await listeners.close()
        await runner.cleanup()


async def _ready(value: dict[str, str]) -> dict[str, str]:
    return value

"""The Device API's provisioning routes, against a fake cloud; every answer as documented."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from aiohttp.test_utils import TestServer
from api_support import KEY, api_context
from iotistic_agent.device_api.app import create_app
from iotistic_agent.engine.memory import MemoryEngine
from iotistic_agent.provisioning.service import Provisioner
from provisioning_support import (
    DEVICE_API_KEY,
    FAST,
    MQTT_PASSWORD,
    PROVISIONING_KEY,
    FakeCloud,
    error,
    free_port,
    start_cloud,
)
from schemathesis.core.failures import FailureGroup

DOCUMENT = Path(__file__).resolve().parents[2] / "docs" / "device-api.openapi.json"
SCHEMA = schemathesis.openapi.from_dict(json.loads(DOCUMENT.read_text(encoding="utf-8")))
SECRETS = (PROVISIONING_KEY, DEVICE_API_KEY, MQTT_PASSWORD)


@dataclasses.dataclass
class Api:
    client: httpx.AsyncClient
    cloud: FakeCloud

    async def call(
        self, method: str, path: str, status: int, body: Any = None, raw: bytes | None = None
    ) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"content": raw} if raw is not None else {"json": body}
        response = await self.client.request(method, path, **kwargs)
        assert response.status_code == status, response.text
        try:
            SCHEMA[path][method].validate_response(response)
        except FailureGroup as exc:
            pytest.fail(f"{method} {path}: answer does not match the document: {exc}")
        for secret in SECRETS:
            assert secret not in response.text
        answer: dict[str, Any] = response.json()
        return answer


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    cloud = FakeCloud()
    cloud_server = await start_cloud(cloud)
    context = api_context(tmp_path, MemoryEngine())
    provisioner = Provisioner(
        context.devices, lambda: context.config.settings, tmp_path, backoff=FAST, timeout_s=5.0
    )
    app = create_app(dataclasses.replace(context, provisioner=provisioner), api_key=KEY)
    async with TestServer(app, host="127.0.0.1") as server:
        headers = {"Authorization": f"Bearer {KEY}"}
        base = str(server.make_url(""))
        async with httpx.AsyncClient(base_url=base, headers=headers, timeout=10) as client:
            yield Api(client, cloud)
    await cloud_server.close()


def provision_body(api: Api, **changes: Any) -> dict[str, Any]:
    return {"provisioningApiKey": PROVISIONING_KEY, "apiEndpoint": api.cloud.url, **changes}


async def test_status_of_a_new_device(api: Api) -> None:
    status = await api.call("GET", "/v1/provision", 200)
    assert status["provisioned"] is False and status["inProgress"] is False
    assert status["deviceId"] is None and status["lastError"] is None


async def test_provision_then_deprovision(api: Api) -> None:
    body = provision_body(api, deviceName="pi-7", deviceType="edge-gateway")
    status = await api.call("POST", "/v1/provision", 200, body)
    assert status["provisioned"] is True
    assert (status["deviceName"], status["deviceType"]) == ("pi-7", "edge-gateway")
    assert status["apiEndpoint"] == api.cloud.url
    assert await api.call("GET", "/v1/provision", 200) == status

    conflict = await api.call("POST", "/v1/provision", 409, provision_body(api))
    assert "already provisioned" in conflict["message"]

    status = await api.call("POST", "/v1/deprovision", 200)
    assert status["provisioned"] is False and status["uuid"]
    conflict = await api.call("POST", "/v1/deprovision", 409)
    assert conflict == {"error": "conflict", "message": "the device is not provisioned"}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "provisioningApiKey: Field required"),
        ({"provisioningApiKey": 12345678901234567890}, "provisioningApiKey: Input should be"),
        ({"provisioningApiKey": PROVISIONING_KEY, "extra": 1}, "extra: Extra inputs"),
        ({"provisioningApiKey": "short", "apiEndpoint": "http://h"}, "16 to 256 characters"),
        ({"provisioningApiKey": PROVISIONING_KEY}, "no cloud API endpoint"),
        ({"provisioningApiKey": PROVISIONING_KEY, "apiEndpoint": "cloud"}, "http:// or https://"),
        (
            {"provisioningApiKey": PROVISIONING_KEY, "apiEndpoint": "http://h", "deviceName": ""},
            "deviceName must be 1 to 255",
        ),
    ],
)
async def test_bad_input_is_a_clear_400(api: Api, body: dict[str, Any], message: str) -> None:
    answer = await api.call("POST", "/v1/provision", 400, body)
    assert answer["error"] == "bad_request" and message in answer["message"]


@pytest.mark.parametrize("raw", [b"{not json", b"[1, 2]", b'"key"'])
async def test_a_body_that_is_no_json_object_is_a_400(api: Api, raw: bytes) -> None:
    await api.call("POST", "/v1/provision", 400, raw=raw)


async def test_the_clouds_refusal_is_a_502_with_its_message(api: Api) -> None:
    api.cloud.key_exchange_failure = error(401, "provisioning key has expired")
    answer = await api.call("POST", "/v1/provision", 502, provision_body(api))
    assert answer == {
        "error": "cloud_error",
        "message": "the cloud refused provisioning: provisioning key has expired",
    }
    status = await api.call("GET", "/v1/provision", 200)
    assert status["provisioned"] is False and status["lastError"] == answer["message"]


async def test_an_unreachable_cloud_is_a_502(api: Api) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    answer = await api.call("POST", "/v1/provision", 502, provision_body(api, apiEndpoint=url))
    assert answer["message"].startswith(f"provisioning failed: cloud at {url} is unreachable")


async def test_deprovision_refused_by_the_cloud_is_a_502_and_changes_nothing(api: Api) -> None:
    await api.call("POST", "/v1/provision", 200, provision_body(api))
    api.cloud.delete_failure = error(401, "invalid device API key")
    answer = await api.call("POST", "/v1/deprovision", 502)
    assert "refused this device's API key (HTTP 401): invalid device API key" in answer["message"]
    assert (await api.call("GET", "/v1/provision", 200))["provisioned"] is True


async def test_a_second_provision_while_one_runs_is_a_409(api: Api) -> None:
    api.cloud.hold_key_exchange = asyncio.Event()
    first = asyncio.create_task(api.client.post("/v1/provision", json=provision_body(api)))
    await api.cloud.key_exchange_started.wait()
    assert (await api.call("GET", "/v1/provision", 200))["inProgress"] is True
    answer = await api.call("POST", "/v1/provision", 409, provision_body(api))
    assert "already in progress" in answer["message"]
    api.cloud.hold_key_exchange.set()
    assert (await first).status_code == 200


async def test_without_a_provisioner_the_routes_are_not_available(tmp_path: Path) -> None:
    app = create_app(api_context(tmp_path, MemoryEngine()), api_key=KEY)
    async with TestServer(app, host="127.0.0.1") as server:
        headers = {"Authorization": f"Bearer {KEY}"}
        async with httpx.AsyncClient(base_url=str(server.make_url("")), headers=headers) as c:
            for method, path in (("GET", "/v1/provision"), ("POST", "/v1/deprovision")):
                response = await c.request(method, path)
                assert response.status_code == 503
                assert response.json()["error"] == "not_available"

"""The device policy's shell (issue 12, item 10): the target store checks every target, local
or cloud, refuses without storing anything and keeps the last refusal for the device's
status; the Device API answers 400 `target_refused` with the refusals."""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from api_support import KEY, api_context
from iotistic_agent.device_api.app import create_app
from iotistic_agent.device_api.context import ApiContext
from iotistic_agent.engine.memory import MemoryEngine
from iotistic_agent.policy import DevicePolicy, TargetRefused
from iotistic_agent.store.db import open_database
from iotistic_agent.store.target_store import TargetStore
from iotistic_contracts import parse_target_state

DOCUMENT = Path(__file__).resolve().parents[2] / "docs" / "device-api.openapi.json"


def one_service(**config: Any) -> dict[str, Any]:
    service = {"serviceId": 1, "serviceName": "web", "imageName": "reg/web:v1", "config": config}
    return {"apps": {"1001": {"appId": 1001, "appName": "demo", "services": [service]}}}


def test_a_refused_target_stores_nothing_and_is_remembered_once(tmp_path: Path) -> None:
    store = TargetStore(open_database(tmp_path / "d.sqlite"))
    bad = parse_target_state(one_service(privileged=True))
    with pytest.raises(TargetRefused) as refused:
        store.save(bad, source="cloud", version=7)
    assert "DEVICE_POLICY_ALLOW_PRIVILEGED" in str(refused.value)
    assert store.stored.version == 0 and store.declared_target() == {}
    first = store.refused
    assert first is not None and (first.source, first.version, first.applied) == ("cloud", 7, False)
    with pytest.raises(TargetRefused):
        store.save(bad, source="cloud", version=7)  # the next poll: the same refusal stays
    assert store.refused is first
    assert store.save(parse_target_state(one_service()), source="cloud", version=8)
    assert store.refused is None


def test_a_policy_that_allows_it_lets_it_through(tmp_path: Path) -> None:
    store = TargetStore(open_database(tmp_path / "d.sqlite"), DevicePolicy(allow_privileged=True))
    assert store.save(parse_target_state(one_service(privileged=True)), source="local")


def test_a_stored_target_the_policy_now_refuses_stays_applied_and_says_so(tmp_path: Path) -> None:
    conn = open_database(tmp_path / "d.sqlite")
    permissive = TargetStore(conn, DevicePolicy(allow_privileged=True))
    permissive.save(parse_target_state(one_service(privileged=True)), source="local")
    strict = TargetStore(conn)  # the agent restarted with a narrower policy
    assert strict.refused is not None and strict.refused.applied
    assert strict.refused.version == 1
    assert 1001 in strict.current_target()  # nothing is removed because of it


def test_symlinks_are_followed_before_the_check(tmp_path: Path) -> None:
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    (allowed / "escape").symlink_to("/")
    store = TargetStore(
        open_database(tmp_path / "d.sqlite"), DevicePolicy(allowed_bind_prefixes=(str(allowed),))
    )
    assert store.save(parse_target_state(one_service(volumes=[f"{allowed}:/a"])), source="local")
    with pytest.raises(TargetRefused, match=r"which leads to /\)"):
        store.save(parse_target_state(one_service(volumes=[f"{allowed}/escape:/a"])), "local")
    assert os.path.islink(allowed / "escape")


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[tuple[TestClient[Any, Any], ApiContext]]:
    context = api_context(tmp_path, MemoryEngine(registry={"reg/web:v1"}))
    app = create_app(context, api_key=KEY)
    async with TestClient(TestServer(app), headers={"Authorization": f"Bearer {KEY}"}) as c:
        yield c, context


async def test_the_api_answers_400_naming_field_and_setting_and_shows_the_refusal(
    client: tuple[TestClient[Any, Any], ApiContext],
) -> None:
    c, _ = client
    response = await c.post(
        "/v2/local/target-state", json=one_service(cap_add=["SYS_ADMIN"], network_mode="host")
    )
    assert response.status == 400
    body = await response.json()
    assert body["error"] == "target_refused"
    assert [(r["field"], r["setting"]) for r in body["refusals"]] == [
        ("apps.1001.services[0].config.cap_add[0]", "DEVICE_POLICY_ALLOWED_CAPABILITIES"),
        ("apps.1001.services[0].config.network_mode", "DEVICE_POLICY_ALLOW_HOST_NETWORK"),
    ]
    assert "device policy" in body["message"]
    document = json.loads(DOCUMENT.read_text(encoding="utf-8"))
    schemas = document["components"]["schemas"]
    assert "target_refused" in json.dumps(schemas["TargetStateErrorBody"])
    device = await (await c.get("/v1/device")).json()
    assert device["targetRefused"]["refusals"] == body["refusals"]
    assert device["targetVersion"] == 0
    config = await c.put("/v1/config/DEVICE_POLICY_ALLOW_HOST_NETWORK", json={"value": "true"})
    assert config.status == 400 and (await config.json())["error"] == "unknown_config_key"

"""A database that cannot take a write (issue 12, item 9): SQLite's own refusals, a database
at its size limit (`PRAGMA max_page_count`: SQLITE_FULL, "database or disk is full") and a
read-only connection (`PRAGMA query_only`), become StorageFull / StorageUnwritable in the
stores, 507 / 503 in the Device API, with nothing stored. The real full file system is in
tests/integration/test_agent_disk_full.py."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from api_support import KEY, api_context
from iotistic_agent.device_api.app import create_app
from iotistic_agent.device_api.context import ApiContext
from iotistic_agent.engine.memory import MemoryEngine
from iotistic_agent.store.config_store import ConfigStore
from iotistic_agent.store.db import open_database
from iotistic_agent.store.errors import StorageFull, StorageUnwritable
from iotistic_agent.store.target_store import TargetStore
from iotistic_contracts import parse_target_state

DOCUMENT = Path(__file__).resolve().parents[2] / "docs" / "device-api.openapi.json"
BIG = "x" * 20_000  # more than the free pages of a fresh database


def target(value: str) -> dict[str, Any]:
    service = {
        "serviceId": 1,
        "serviceName": "web",
        "imageName": "reg/web:v1",
        "config": {"environment": {"BIG": value}},
    }
    return {"apps": {"1001": {"appId": 1001, "appName": "demo", "services": [service]}}}


def full(conn: sqlite3.Connection) -> None:
    """No page beyond the ones the database has: the next growth is SQLITE_FULL."""
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    conn.execute(f"PRAGMA max_page_count = {pages}")


def test_a_full_database_keeps_the_stored_target_and_the_next_write_works(
    tmp_path: Path,
) -> None:
    conn = open_database(tmp_path / "d.sqlite")
    store = TargetStore(conn)
    full(conn)
    with pytest.raises(StorageFull, match="full"):
        store.save(parse_target_state(target(BIG)), source="local")
    assert store.stored.version == 0 and store.declared_target() == {}
    assert not conn.in_transaction
    conn.execute("PRAGMA max_page_count = 1000000")
    assert store.save(parse_target_state(target(BIG)), source="local")
    assert TargetStore(conn).stored.version == 1  # committed, as a reload shows


def test_a_full_database_refuses_a_config_value_and_a_read_only_one_any_write(
    tmp_path: Path,
) -> None:
    conn = open_database(tmp_path / "d.sqlite")
    store = ConfigStore(conn)
    full(conn)
    with pytest.raises(StorageFull):
        store.set("DEVICE_NAME", BIG)
    conn.execute("PRAGMA max_page_count = 1000000")
    conn.execute("PRAGMA query_only = ON")
    with pytest.raises(StorageUnwritable, match="readonly"):
        store.set("DEVICE_NAME", "pi")
    with pytest.raises(StorageUnwritable):
        TargetStore(conn).save(parse_target_state(target("small")), source="local")
    conn.execute("PRAGMA query_only = OFF")
    assert store.overrides() == {}


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[tuple[TestClient[Any, Any], ApiContext]]:
    context = api_context(tmp_path, MemoryEngine(registry={"reg/web:v1"}))
    app = create_app(context, api_key=KEY)
    headers = {"Authorization": f"Bearer {KEY}"}
    async with TestClient(TestServer(app), headers=headers) as client:
        yield client, context


def conforms(method: str, template: str, status: int, body: Any) -> None:
    """The document lists this status for the operation, with this error code."""
    document = json.loads(DOCUMENT.read_text(encoding="utf-8"))
    responses = document["paths"][template][method.lower()]["responses"]
    assert str(status) in responses, f"{method} {template} does not document {status}"
    reference = responses[str(status)]["$ref"].rsplit("/", 1)[-1]
    content = document["components"]["responses"][reference]["content"]["application/json"]
    name = content["schema"]["$ref"].rsplit("/", 1)[-1]
    allowed = document["components"]["schemas"][name]["properties"]["error"]["enum"]
    assert body["error"] in allowed and isinstance(body["message"], str)


async def test_a_full_database_is_a_507_and_a_read_only_one_a_503_with_nothing_stored(
    api: tuple[TestClient[Any, Any], ApiContext],
) -> None:
    client, context = api
    full(context.database)
    posted = await client.post("/v2/local/target-state", json=target(BIG))
    body = await posted.json()
    assert posted.status == 507 and body["error"] == "insufficient_storage"
    assert str(context.config.settings.data_dir) in body["message"]
    assert "running containers are not affected" in body["message"]
    conforms("POST", "/v2/local/target-state", 507, body)
    # A value long enough to need pages the database may not have (the name's limit is 128).
    endpoint = f"http://{'a' * 60}.example/{BIG}"
    put = await client.put("/v1/config/CLOUD_API_ENDPOINT", json={"value": endpoint})
    assert put.status == 507
    conforms("PUT", "/v1/config/{key}", 507, await put.json())
    health = await client.get("/v1/healthy")
    assert health.status == 503 and (await health.json())["error"] == "database_unwritable"

    context.database.execute("PRAGMA max_page_count = 1000000")
    context.database.execute("PRAGMA query_only = ON")
    refused = await client.post("/v2/local/target-state", json=target("small"))
    body = await refused.json()
    assert refused.status == 503 and body["error"] == "database_unwritable"
    assert str(context.config.settings.DATABASE_PATH) in body["message"]
    conforms("POST", "/v2/local/target-state", 503, body)
    context.database.execute("PRAGMA query_only = OFF")

    stored = await client.get("/v2/local/target-state")
    assert stored.headers["X-Target-Version"] == "0" and (await stored.json())["apps"] == {}
    entry = await (await client.get("/v1/config/CLOUD_API_ENDPOINT")).json()
    assert entry["source"] == "default"

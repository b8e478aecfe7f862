"""Cross-cutting HTTP behaviour: JSON errors, body limits, health."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from iotistic_cloud.api.app import create_app
from iotistic_cloud.db.engine import Database
from iotistic_cloud.settings import database_url

from tests.cloud.conftest import make_settings
from tests.cloud.device_kit import ADMIN, KEY_EXCHANGE
from tests.support.net import free_port

LIMIT = 1024 * 1024


async def test_health(client: httpx.AsyncClient) -> None:
    answer = await client.get("/health")
    assert answer.status_code == 200
    assert answer.json() == {"status": "ok", "database": "ok"}


@pytest.mark.parametrize(
    "url",
    [f"postgresql://postgres@127.0.0.1:{free_port()}/nothing", "sqlite:///{tmp}/missing/x.sqlite"],
    ids=["postgresql", "sqlite"],
)
async def test_health_when_the_database_is_unreachable(tmp_path: Path, url: str) -> None:
    unreachable = database_url(url.format(tmp=tmp_path))
    database = Database(unreachable)
    if url.startswith("sqlite"):
        # A directory where the database file should be: SQLite cannot open it.
        (tmp_path / "missing" / "x.sqlite").mkdir(parents=True)
    app = create_app(make_settings(tmp_path, unreachable), database=database)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://cloud.test") as client:
        answer = await client.get("/health")
        assert answer.status_code == 503
        assert answer.json() == {"status": "error", "database": "unreachable"}
        # Other routes say so as JSON too, without internals.
        failed = await client.get("/api/admin/v1/keys", headers=ADMIN)
        assert failed.status_code == 503
        assert failed.json() == {"error": "database unavailable; try again later"}
    await database.dispose()


async def test_a_writer_waiting_too_long_for_sqlite_is_503(tmp_path: Path) -> None:
    """SQLite has one writer: one that cannot get its turn in time is answered 503."""
    database = Database(database_url(f"sqlite:///{tmp_path / 'busy.sqlite'}"), wait_timeout_s=0.2)
    app = create_app(make_settings(tmp_path, database.url), database=database)
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://cloud.test") as client,
    ):
        async with database.write_connection():  # another writer holds the turn
            busy = await client.post("/api/admin/v1/keys", json={}, headers=ADMIN)
        assert busy.status_code == 503
        assert busy.headers["Retry-After"] == "5"
        assert busy.json() == {"error": "database unavailable; try again later"}
        assert database.outage.down
        created = await client.post("/api/admin/v1/keys", json={}, headers=ADMIN)
        assert created.status_code == 201
        assert not database.outage.down
    await database.dispose()


async def test_unknown_route_and_method_are_json(early_client: httpx.AsyncClient) -> None:
    missing = await early_client.get("/nowhere")
    assert missing.status_code == 404
    assert missing.json() == {"error": "Not Found"}
    wrong = await early_client.put("/health")
    assert wrong.status_code == 405
    assert wrong.json() == {"error": "Method Not Allowed"}


@pytest.mark.parametrize(
    "path", [KEY_EXCHANGE, "/api/provisioning/v2/register", "/api/admin/v1/keys"]
)
async def test_declared_oversized_body_is_413(early_client: httpx.AsyncClient, path: str) -> None:
    answer = await early_client.post(path, content=b"{" + b" " * LIMIT + b"}", headers=ADMIN)
    assert answer.status_code == 413
    assert answer.json() == {"error": f"request body is larger than {LIMIT} bytes"}


async def test_streamed_oversized_body_is_413(early_client: httpx.AsyncClient) -> None:
    """No Content-Length: the limit applies while the body is read."""

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(20):
            yield b" " * (64 * 1024)

    answer = await early_client.post(
        KEY_EXCHANGE, content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert answer.status_code == 413
    assert answer.json() == {"error": f"request body is larger than {LIMIT} bytes"}


@pytest.mark.parametrize(
    ("content", "content_type", "field"),
    [
        (b"{", "application/json", ""),
        (b"[]", "application/json", ""),
        (b'{"deviceUuid": 5}', "application/json", "deviceUuid"),
        (b"deviceUuid=x", "application/x-www-form-urlencoded", ""),
        (b'{"deviceUuid": "x"}', "", ""),
    ],
)
async def test_bad_bodies_are_400_with_fields(
    early_client: httpx.AsyncClient, content: bytes, content_type: str, field: str
) -> None:
    answer = await early_client.post(
        KEY_EXCHANGE, content=content, headers={"Content-Type": content_type}
    )
    assert answer.status_code == 400, answer.text
    body = answer.json()
    assert body["error"].startswith("invalid request")
    assert field in [error["field"] for error in body["errors"]]


async def test_openapi_document_lists_the_routes(early_client: httpx.AsyncClient) -> None:
    paths = (await early_client.get("/openapi.json")).json()["paths"]
    assert set(paths) == {
        "/health",
        "/api/provisioning/v2/key-exchange",
        "/api/provisioning/v2/register",
        "/api/v1/device/{uuid}/state",
        "/api/v1/device/state",
        "/api/v1/device/{uuid}",
        "/api/admin/v1/keys",
        "/api/admin/v1/keys/{key_id}",
        "/api/admin/v1/devices",
        "/api/admin/v1/devices/{uuid}",
        "/api/admin/v1/devices/{uuid}/target",
        "/api/admin/v1/devices/{uuid}/reports",
        "/api/admin/v1/devices/{uuid}/anomalies",
        "/api/v1/device/{uuid}/logs",
        "/api/admin/v1/devices/{uuid}/logs",
    }


async def test_openapi_document_lists_the_error_answers(early_client: httpx.AsyncClient) -> None:
    """Every operation may answer 503 with Retry-After (the database); the target PUT
    documents If-Match and its 412."""
    paths = (await early_client.get("/openapi.json")).json()["paths"]
    for item in paths.values():
        for operation in item.values():
            unavailable = operation["responses"]["503"]
            assert "Retry-After" in unavailable["headers"]
    put = paths["/api/admin/v1/devices/{uuid}/target"]["put"]
    assert "412" in put["responses"] and "415" in put["responses"]
    assert "If-Match" in [parameter["name"] for parameter in put["parameters"]]

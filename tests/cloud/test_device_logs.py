"""Log uploads: NDJSON (plain or gzip), per-device auth, limits, duplicates, retention."""

from __future__ import annotations

import gzip
import json

import httpx
from fastapi import FastAPI
from iotistic_cloud.composition import Cloud
from iotistic_cloud.db.engine import Database
from iotistic_cloud.db.models import DeviceLog
from iotistic_cloud.services.log_input import parse_upload
from iotistic_cloud.services.log_query import LogFilter
from iotistic_cloud.services.logs import LogService
from iotistic_contracts.logs import (
    LOGS_GZIP_CONTENT_TYPE,
    MAX_LOG_RECORDS_PER_UPLOAD,
    MAX_LOG_SEQ,
    LogRecord,
)
from sqlalchemy import select, update

from tests.cloud.conftest import SettableClock
from tests.cloud.device_kit import ADMIN, provision
from tests.cloud.log_kit import container, logs_path, ndjson, record, upload
from tests.integration.waiting import wait_for_async


async def stored(cloud: Cloud, device_uuid: str) -> list[dict[str, object]]:
    return (await cloud.logs.query(device_uuid, LogFilter(), 10_000)).records


async def test_upload_keeps_order_and_tags(client: httpx.AsyncClient, key: str) -> None:
    device = await provision(client, key)
    records = [
        record(1, "agent starting", context={"version": "1.2", "nested": {"a": [1, 2]}}),
        container(2, "web", "GET / 200", stream="stderr"),
        record(3, "x" * 10, level="error", component="cloudSync", truncated=True),
    ]
    answer = await upload(client, device, records)
    assert answer.status_code == 202, answer.text
    assert answer.json() == {"accepted": 3, "duplicates": 0, "lastSeq": 3}

    page = await client.get(f"/api/admin/v1/devices/{device.uuid}/logs", headers=ADMIN)
    assert page.status_code == 200
    logs = page.json()["logs"]
    assert page.json()["lastSeq"] == 3
    for sent, got in zip(records, logs, strict=True):
        got = dict(got)
        assert got.pop("receivedAt").endswith("+00:00")
        assert got == {k: v for k, v in sent.items() if v is not None} | {
            "truncated": sent.get("truncated", False)
        }


async def test_gzip_both_ways_and_duplicates(client: httpx.AsyncClient, key: str) -> None:
    device = await provision(client, key)
    first = await upload(client, device, [record(n) for n in range(1, 4)], compress=True)
    assert first.json() == {"accepted": 3, "duplicates": 0, "lastSeq": 3}
    # The agent's retry after a lost answer: the same records again, plus new ones.
    body = gzip.compress(ndjson([record(n) for n in range(2, 6)]))
    headers = {**device.auth, "Content-Type": LOGS_GZIP_CONTENT_TYPE}
    retry = await client.post(logs_path(device.uuid), content=body, headers=headers)
    assert retry.status_code == 202, retry.text
    assert retry.json() == {"accepted": 2, "duplicates": 2, "lastSeq": 5}
    again = await upload(client, device, [record(5), record(5)])
    assert again.json() == {"accepted": 0, "duplicates": 2, "lastSeq": 5}
    page = (await client.get(f"/api/admin/v1/devices/{device.uuid}/logs", headers=ADMIN)).json()
    assert [r["seq"] for r in page["logs"]] == [1, 2, 3, 4, 5]


async def test_empty_upload(client: httpx.AsyncClient, key: str) -> None:
    device = await provision(client, key)
    answer = await client.post(logs_path(device.uuid), content=b"", headers=device.auth)
    assert answer.json() == {"accepted": 0, "duplicates": 0, "lastSeq": 0}


async def test_device_auth(client: httpx.AsyncClient, key: str) -> None:
    device = await provision(client, key)
    other = await provision(client, key, name="other")
    body = ndjson([record(1)])
    wrong = await client.post(
        logs_path(device.uuid), content=body, headers={"Authorization": "Bearer nope"}
    )
    assert wrong.status_code == 401
    missing = await client.post(logs_path(device.uuid), content=body)
    assert missing.status_code == 401
    foreign = await client.post(logs_path(other.uuid), content=body, headers=device.auth)
    assert foreign.status_code == 403
    admin = await client.post(logs_path(device.uuid), content=body, headers=ADMIN)
    assert admin.status_code == 401
    for target in (device, other):
        page = await client.get(f"/api/admin/v1/devices/{target.uuid}/logs", headers=ADMIN)
        assert page.json() == {"logs": [], "lastSeq": 0}


async def test_limits(client: httpx.AsyncClient, key: str) -> None:
    device = await provision(client, key)
    path, headers = logs_path(device.uuid), device.auth
    big = ndjson([record(1, "x" * 16000)] * 70)
    assert len(big) > 1024 * 1024
    assert (await client.post(path, content=big, headers=headers)).status_code == 413

    bomb = gzip.compress(b"\n" * (9 * 1024 * 1024))
    answer = await client.post(path, content=bomb, headers={**headers, "Content-Encoding": "gzip"})
    assert answer.status_code == 413
    assert "decompressed" in answer.json()["error"]

    many = gzip.compress(ndjson([record(n, "m") for n in range(1, MAX_LOG_RECORDS_PER_UPLOAD + 2)]))
    answer = await client.post(path, content=many, headers={**headers, "Content-Encoding": "gzip"})
    assert answer.status_code == 413
    assert str(MAX_LOG_RECORDS_PER_UPLOAD) in answer.json()["error"]

    for encoding, content_type, status in (("br", None, 415), (None, "text/plain", 415)):
        extra = {"Content-Encoding": encoding} if encoding else {"Content-Type": content_type}
        answer = await client.post(path, content=ndjson([record(1)]), headers={**headers, **extra})
        assert answer.status_code == status, answer.text
    broken = await client.post(
        path, content=b"\x1f\x8bnot gzip", headers={**headers, "Content-Encoding": "gzip"}
    )
    assert broken.status_code == 400
    page = await client.get(f"/api/admin/v1/devices/{device.uuid}/logs", headers=ADMIN)
    assert page.json()["logs"] == []


async def test_a_bad_line_refuses_the_upload(client: httpx.AsyncClient, key: str) -> None:
    device = await provision(client, key)
    good = ndjson([record(1), record(2)])
    cases = [
        (good + b'{"seq": 3, "timestamp": "yesterday"}\n', 3, "timestamp"),
        (good + b"not json\n", 3, None),
        (good + json.dumps(record(3, level="fatal")).encode(), 3, "level"),
        (good + json.dumps(record(3, colour="red")).encode(), 3, "colour"),
        (b"\n" + json.dumps(record(0)).encode() + b"\n" + good, 2, "seq"),
        (good + json.dumps(record(3, timestamp="2026-13-25T12:00:00Z")).encode(), 3, "timestamp"),
        (good + b"[1, 2]\n", 3, None),
    ]
    for body, line, field in cases:
        answer = await client.post(logs_path(device.uuid), content=body, headers=device.auth)
        assert answer.status_code == 400, answer.text
        error = answer.json()
        assert error["line"] == line
        assert error["error"].startswith(f"invalid log record: line {line}")
        assert error.get("field") == field
        assert "yesterday" not in error["error"] and "red" not in error["error"]
    page = await client.get(f"/api/admin/v1/devices/{device.uuid}/logs", headers=ADMIN)
    assert page.json() == {"logs": [], "lastSeq": 0}


async def test_awkward_text_is_stored(client: httpx.AsyncClient, key: str) -> None:
    device = await provision(client, key)
    records = [
        record(1, "nul \u0000 byte", context={"k": "v\u0000"}),
        record(2, "caf\u00e9 \u2603 100% _under_"),
    ]
    body = "\n".join(json.dumps(r) for r in records).encode()
    answer = await client.post(logs_path(device.uuid), content=body, headers=device.auth)
    assert answer.status_code == 202, answer.text
    page = await client.get(f"/api/admin/v1/devices/{device.uuid}/logs", headers=ADMIN)
    logs = page.json()["logs"]
    assert logs[0]["message"] == "nul \ufffd byte"
    assert logs[0]["context"] == {"k": "v\u0000"}
    assert logs[1]["message"] == records[1]["message"]
    # JSON with a lone surrogate escape is refused like any invalid line (the agent sends
    # text decoded with replacement characters).
    bad = json.dumps(record(3, "lone \ud800 surrogate")).encode()
    answer = await client.post(logs_path(device.uuid), content=bad, headers=device.auth)
    assert (answer.status_code, answer.json()["line"]) == (400, 1)


async def test_deleting_a_device_deletes_its_logs(
    cloud: Cloud, client: httpx.AsyncClient, key: str, db: Database
) -> None:
    device = await provision(client, key)
    await upload(client, device, [record(1)])
    assert (
        await client.delete(f"/api/admin/v1/devices/{device.uuid}", headers=ADMIN)
    ).status_code == 204
    again = await provision(client, key)
    await upload(client, again, [record(1)])
    page = await cloud.logs.query(again.uuid, LogFilter(), 100)
    assert len(page.records) == 1


async def test_retention_by_age_and_count(
    client: httpx.AsyncClient, key: str, db: Database, clock: SettableClock
) -> None:
    device = await provision(client, key)
    logs = LogService(db, clock, retention_days=7, max_per_device=5)

    async def seqs() -> list[int]:
        return [r["seq"] for r in (await logs.query(device.uuid, LogFilter(), 100)).records]

    uploader = await logs.authenticate(device.api_key, device.uuid)

    def batch(*numbers: int) -> list[tuple[LogRecord, int]]:
        return parse_upload(ndjson([record(n) for n in numbers]))

    await logs.store(uploader, batch(1, 2, 3))
    clock.advance(6 * 86400)
    await logs.store(uploader, batch(4, 5))
    assert await seqs() == [1, 2, 3, 4, 5]
    clock.advance(1.5 * 86400)  # 1-3 are 7.5 days old, 4-5 are 1.5
    await logs.store(uploader, batch(6))
    assert await seqs() == [4, 5, 6]
    await logs.store(uploader, batch(7, 8, 9, 10, 11))
    assert await seqs() == [4, 5, 6, 7, 8, 9, 10, 11]  # pruned at most once a minute
    clock.advance(61)
    await logs.store(uploader, batch(12))
    assert await seqs() == [8, 9, 10, 11, 12]


def test_retention_settings() -> None:
    from iotistic_cloud.settings import Settings, SettingsError

    defaults = Settings.from_env({})
    assert (defaults.log_retention_days, defaults.log_max_records_per_device) == (7, 100_000)
    custom = Settings.from_env({"LOG_RETENTION_DAYS": "30", "LOG_MAX_RECORDS_PER_DEVICE": "500"})
    assert (custom.log_retention_days, custom.log_max_records_per_device) == (30, 500)
    for name, value in (("LOG_RETENTION_DAYS", "0"), ("LOG_MAX_RECORDS_PER_DEVICE", "many")):
        try:
            Settings.from_env({name: value})
        except SettingsError as exc:
            assert name in str(exc)
        else:
            raise AssertionError(f"{name}={value} was accepted")


async def test_non_finite_context_is_stored_as_null(
    client: httpx.AsyncClient, key: str, db: Database
) -> None:
    device = await provision(client, key)
    line = (
        b'{"seq": 1, "timestamp": "2026-11-25T12:00:01Z", "level": "info", "source": "agent",'
        b' "message": "odd numbers", "context": {"nan": NaN, "inf": Infinity, "big": 1e400,'
        b' "deep": {"list": [1.5, -Infinity, {"n": NaN}], "ok": 2}, "int": 12345678901234567890}}'
    )
    answer = await client.post(logs_path(device.uuid), content=line + b"\n", headers=device.auth)
    assert answer.status_code == 202, answer.text
    expected = {
        "nan": None,
        "inf": None,
        "big": None,
        "deep": {"list": [1.5, None, {"n": None}], "ok": 2},
        "int": 12345678901234567890,
    }

    def strict(constant: str) -> None:
        raise AssertionError(f"stored {constant}")

    async with db.engine.connect() as conn:
        stored_text = await conn.scalar(select(DeviceLog.context))
    assert json.loads(stored_text, parse_constant=strict) == expected
    page = await client.get(f"/api/admin/v1/devices/{device.uuid}/logs", headers=ADMIN)
    assert page.status_code == 200, page.text
    assert page.json()["logs"][0]["context"] == expected

    # A row stored before the fix (NaN in the text) still reads, as null.
    async with db.engine.begin() as conn:
        await conn.execute(update(DeviceLog).values(context='{"old": NaN, "x": [Infinity]}'))
    old = await client.get(f"/api/admin/v1/devices/{device.uuid}/logs", headers=ADMIN)
    assert old.status_code == 200, old.text
    assert old.json()["logs"][0]["context"] == {"old": None, "x": [None]}


async def test_a_jump_in_seq_keeps_the_records_before_it(
    client: httpx.AsyncClient, key: str, db: Database, clock: SettableClock
) -> None:
    device = await provision(client, key)
    logs = LogService(db, clock, retention_days=7, max_per_device=60)
    uploader = await logs.authenticate(device.api_key, device.uuid)

    async def seqs() -> list[int]:
        return [r["seq"] for r in (await logs.query(device.uuid, LogFilter(), 1000)).records]

    await logs.store(uploader, parse_upload(ndjson([record(n) for n in range(1, 51)])))
    clock.advance(61)
    result = await logs.store(uploader, parse_upload(ndjson([record(MAX_LOG_SEQ)])))
    assert result.lastSeq == MAX_LOG_SEQ
    assert await seqs() == [*range(1, 51), MAX_LOG_SEQ]
    # Past the cap, the newest 60 by seq stay, the jump among them.
    clock.advance(61)
    more = [record(MAX_LOG_SEQ - 20 + n) for n in range(20)]
    await logs.store(uploader, parse_upload(ndjson(more)))
    assert await seqs() == [*range(12, 51), *(MAX_LOG_SEQ - 20 + n for n in range(21))]
    # The highest seq the contract allows is a valid cursor.
    page = await client.get(
        f"/api/admin/v1/devices/{device.uuid}/logs",
        params={"after_seq": MAX_LOG_SEQ},
        headers=ADMIN,
    )
    assert page.json() == {"logs": [], "lastSeq": MAX_LOG_SEQ}


async def test_expired_logs_of_a_silent_device_are_pruned(
    client: httpx.AsyncClient, key: str, db: Database, clock: SettableClock
) -> None:
    quiet = await provision(client, key, name="quiet")
    busy = await provision(client, key, name="busy")
    logs = LogService(db, clock, retention_days=7, max_per_device=100)

    async def seqs(device_uuid: str) -> list[int]:
        return [r["seq"] for r in (await logs.query(device_uuid, LogFilter(), 100)).records]

    for device, numbers in ((quiet, (1, 2)), (busy, (1,))):
        uploader = await logs.authenticate(device.api_key, device.uuid)
        await logs.store(uploader, parse_upload(ndjson([record(n) for n in numbers])))
    clock.advance(3 * 86400)
    uploader = await logs.authenticate(busy.api_key, busy.uuid)
    await logs.store(uploader, parse_upload(ndjson([record(2)])))
    assert await logs.prune_expired() == 0
    clock.advance(5 * 86400)  # the first records are 8 days old, busy's second 5
    assert await logs.prune_expired() == 3
    assert (await seqs(quiet.uuid), await seqs(busy.uuid)) == ([], [2])


async def test_the_app_sweeps_expired_logs(
    app: FastAPI, client: httpx.AsyncClient, key: str, clock: SettableClock
) -> None:
    device = await provision(client, key)
    await upload(client, device, [record(1)])
    cloud: Cloud = app.state.cloud
    clock.advance(8 * 86400)
    # The lifespan starts the sweep, which prunes at once (then hourly).
    async def gone() -> bool:
        return await stored(cloud, device.uuid) == []

    assert not await gone()
    async with app.router.lifespan_context(app):
        await wait_for_async(gone, 10, message="the expired record was not pruned")

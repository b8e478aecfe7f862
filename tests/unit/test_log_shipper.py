"""LogShipper against a fake uploader (pure logic): order, retries with records kept on disk,
refused uploads dropped, and the agent-record handler's sampling and record shape."""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from iotistic_agent.backoff import Backoff
from iotistic_agent.cloud.client import Rejected, SyncFailure
from iotistic_agent.cloud.retry import RetryPolicy
from iotistic_agent.logs.agent_records import ShippingHandler
from iotistic_agent.logs.outbox import Cursor, LogOutbox
from iotistic_agent.logs.sampling import LevelSampler
from iotistic_agent.logs.shipper import LogShipper
from iotistic_contracts.logs import LogRecord, LogUploadResult

TS = "2026-11-25T10:00:00.000000001Z"


class FakeUploader:
    """Records what was uploaded; ``fail`` makes the next uploads raise."""

    def __init__(self) -> None:
        self.received: list[LogRecord] = []
        self.fail: list[Exception] = []
        self.compress = True
        self.bytes_sent = 0

    async def upload(self, bodies: Sequence[str]) -> LogUploadResult:
        if self.fail:
            raise self.fail.pop(0)
        self.received += [LogRecord.model_validate_json(b) for b in bodies]
        return LogUploadResult(accepted=len(bodies), duplicates=0, lastSeq=self.received[-1].seq)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def line(message: str) -> dict[str, Any]:
    return {
        "timestamp": TS,
        "level": "info",
        "source": "container",
        "app": "shop",
        "service": "web",
        "stream": "stdout",
        "message": message,
    }


def shipper_for(tmp_path: Path, uploader: FakeUploader, clock: Clock) -> LogShipper:
    outbox = LogOutbox(tmp_path / "outbox.sqlite", max_records=10_000)
    policy = RetryPolicy(base_s=15, max_s=900, circuit_cooldown_s=300)
    return LogShipper(outbox, uploader, 3600, policy, clock=clock)  # type: ignore[arg-type]


async def test_records_are_stored_then_uploaded_in_order(tmp_path: Path) -> None:
    uploader, clock = FakeUploader(), Clock()
    shipper = shipper_for(tmp_path, uploader, clock)
    task = asyncio.create_task(shipper.run())
    try:
        for i in range(2500):
            await shipper.put(line(f"line {i}"), ("c1/stdout", Cursor(TS, i + 1)))
        await asyncio.wait_for(shipper.settled(), 10)
        assert await shipper.drain()
        assert [r.message for r in uploader.received] == [f"line {i}" for i in range(2500)]
        assert [r.seq for r in uploader.received] == list(range(1, 2501))
        assert shipper.outbox.pending() == 0
        assert shipper.outbox.cursors_of("c1") == {"stdout": Cursor(TS, 2500)}
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_a_failed_upload_keeps_the_records_and_waits_for_the_backoff(tmp_path: Path) -> None:
    uploader, clock = FakeUploader(), Clock()
    shipper = shipper_for(tmp_path, uploader, clock)
    task = asyncio.create_task(shipper.run())
    try:
        for i in range(3):
            await shipper.put(line(f"line {i}"), None)
        await asyncio.wait_for(shipper.settled(), 10)
        uploader.fail = [SyncFailure("cloud unreachable")]
        assert not await shipper.drain()
        assert shipper.outbox.pending() == 3
        assert not await shipper.drain()  # the gate holds until the backoff has passed
        clock.now += 20  # 15 s +-20 %
        assert await shipper.drain()
        assert [r.message for r in uploader.received] == ["line 0", "line 1", "line 2"]
        assert shipper.status()["errors"] == 0
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_stopping_stores_what_is_still_queued(tmp_path: Path) -> None:
    uploader, clock = FakeUploader(), Clock()
    shipper = shipper_for(tmp_path, uploader, clock)
    task = asyncio.create_task(shipper.run())
    await asyncio.wait_for(shipper.settled(), 5)  # running, with nothing queued yet
    for i in range(5):
        shipper.offer(line(f"agent {i}"))
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert shipper.outbox.pending() == 5


async def test_offer_drops_and_counts_when_the_queue_is_full(tmp_path: Path) -> None:
    outbox = LogOutbox(tmp_path / "outbox.sqlite", max_records=100)
    policy = RetryPolicy()
    shipper = LogShipper(outbox, FakeUploader(), 60, policy, queue_size=3)  # type: ignore[arg-type]
    shipper._loop = asyncio.get_running_loop()  # accepting, but the writer is not running
    for i in range(5):
        shipper.offer(line(str(i)))
    assert shipper.dropped_in_memory == 2


# --- the agent's own records ---------------------------------------------------------------


def test_warnings_and_errors_are_never_sampled_away() -> None:
    sampler = LevelSampler({"debug": 0.0, "info": 0.0, "warn": 0.0, "error": 0.2}, rand=lambda: 0.9)
    assert not sampler.keep("debug") and not sampler.keep("info")
    assert sampler.keep("warn") and sampler.keep("error")
    half = LevelSampler({"info": 0.5}, rand=iter([0.4, 0.6]).__next__)
    assert [half.keep("info"), half.keep("info")] == [True, False]


def test_the_handler_ships_sampled_records_in_the_wire_shape() -> None:
    shipped: list[dict[str, Any]] = []
    handler = ShippingHandler(
        shipped.append, LevelSampler({"debug": 0.0, "info": 1.0, "warn": 1.0, "error": 1.0})
    )
    logger = logging.getLogger("iotistic.cloud")
    logger.addHandler(handler)
    old = logger.level
    logger.setLevel(logging.DEBUG)
    try:
        logger.debug("sampled away")
        logger.info("polled %s", "ok", extra={"context": {"etag": "W/1"}})
        try:
            raise ValueError("boom")
        except ValueError:
            logger.exception("poll failed")
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old)
    records = [LogRecord.model_validate({"seq": i + 1, **f}) for i, f in enumerate(shipped)]
    assert [(r.level, r.component, r.message) for r in records] == [
        ("info", "cloudSync", "polled ok"),
        ("error", "cloudSync", "poll failed"),
    ]
    assert records[0].context == {"etag": "W/1"}
    assert records[1].context is not None
    assert records[1].context["error"] == "ValueError: boom"
    assert "Traceback" in records[1].context["stack"]


@pytest.mark.parametrize("rate", [-1.0, 2.0])
def test_rates_outside_0_to_1_are_clamped(rate: float) -> None:
    sampler = LevelSampler({"info": rate}, rand=lambda: 0.5)
    assert sampler.rates["info"] in (0.0, 1.0)


class PickyUploader(FakeUploader):
    """Refuses any upload that contains a record saying "poison"."""

    async def upload(self, bodies: Sequence[str]) -> LogUploadResult:
        if any('"poison' in body for body in bodies):
            raise Rejected("cloud answered 400: line 1: bad")
        return await super().upload(bodies)


async def test_only_the_record_the_cloud_refuses_is_dropped(tmp_path: Path) -> None:
    uploader, clock = PickyUploader(), Clock()
    shipper = shipper_for(tmp_path, uploader, clock)
    task = asyncio.create_task(shipper.run())
    try:
        for i in range(100):
            await shipper.put(line("poison" if i == 37 else f"line {i}"), None)
        await asyncio.wait_for(shipper.settled(), 10)
        assert await shipper.drain()
        assert [r.message for r in uploader.received] == [
            f"line {i}" for i in range(100) if i != 37
        ]
        assert shipper.rejected == 1 and shipper.outbox.pending() == 0
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def test_a_lone_surrogate_is_stored_as_a_replacement_character(tmp_path: Path) -> None:
    outbox = LogOutbox(tmp_path / "outbox.sqlite", max_records=100)
    outbox.store([line("file \udcff.txt")])
    [(_, body)] = outbox.oldest(1, 10_000)
    assert LogRecord.model_validate_json(body.encode("utf-8")).message == "file \ufffd.txt"


def test_new_settings_apply_to_the_running_shipping_at_once(tmp_path: Path) -> None:
    from iotistic_agent.logs.shipping import LogShippingRun, ShippingSettings
    from iotistic_agent.store.device import CloudCredentials

    def settings(interval_s: float, compress: bool, info: float) -> ShippingSettings:
        return ShippingSettings(
            upload_interval_s=interval_s,
            compress=compress,
            sampling={"debug": 0.0, "info": info, "warn": 1.0, "error": 1.0},
            max_records=1000,
            max_bytes=10**8,
            policy=RetryPolicy(),
            data_dir=tmp_path,
        )

    credentials = CloudCredentials(
        uuid="d", endpoint="http://127.0.0.1:1", api_key="idk_x", ca_cert=None, verify_tls=True
    )
    run = LogShippingRun(
        credentials,
        settings(60, True, 0.5),
        None,
        lambda: None,
        lambda a: None,
        [],  # type: ignore[arg-type]
    )
    uploader = FakeUploader()
    run.shipper = shipper_for(tmp_path, uploader, Clock())
    run.handler = ShippingHandler(run.shipper.offer, LevelSampler({"info": 0.5}))
    run.apply(settings(5, False, 1.0))
    assert run.shipper.interval_s == 5
    assert uploader.compress is False
    assert run.handler.sampler.rates["info"] == 1.0


def test_secrets_in_an_exception_never_reach_the_cloud() -> None:
    from iotistic_agent.logs.redaction import RedactingFilter

    shipped: list[dict[str, Any]] = []
    handler = ShippingHandler(shipped.append, LevelSampler({}))
    handler.addFilter(RedactingFilter())
    logger = logging.getLogger("iotistic.mqtt.test_secret")
    logger.addHandler(handler)
    secret = "idk_" + "A" * 43
    try:
        try:
            raise ConnectionError(f"mqtts://dev:hunter2secret@broker refused; Bearer {secret}")
        except ConnectionError:
            logger.exception("connect failed", extra={"context": {"reading": float("nan")}})
    finally:
        logger.removeHandler(handler)
    [fields] = shipped
    text = json.dumps(fields)  # valid JSON: no NaN
    assert "hunter2secret" not in text and secret not in text
    assert "[redacted]" in fields["context"]["error"]
    assert fields["context"]["reading"] == "nan"


class RefuseAll(FakeUploader):
    async def upload(self, bodies: Sequence[str]) -> LogUploadResult:
        raise Rejected("cloud answered 415: Content-Type not supported")


async def test_when_the_cloud_refuses_everything_the_records_are_kept(tmp_path: Path) -> None:
    uploader, clock = RefuseAll(), Clock()
    shipper = shipper_for(tmp_path, uploader, clock)
    task = asyncio.create_task(shipper.run())
    try:
        for i in range(40):
            await shipper.put(line(f"line {i}"), None)
        await asyncio.wait_for(shipper.settled(), 10)
        assert not await shipper.drain()
        assert shipper.outbox.pending() == 40 and shipper.rejected == 0
        assert "refuses every log upload" in str(shipper.status()["lastError"])
        assert not await shipper.drain()  # backing off
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_a_failed_store_is_retried_and_nothing_is_lost(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from iotistic_agent.logs import shipper as shipper_module

    monkeypatch.setattr(shipper_module, "STORE_BACKOFF", Backoff(base_s=0.01, max_s=0.01))
    uploader, clock = FakeUploader(), Clock()
    shipper = shipper_for(tmp_path, uploader, clock)
    real_store = shipper.outbox.store
    failures = [sqlite3.OperationalError("database or disk is full")]

    def flaky_store(*args: Any) -> Any:
        if failures:
            raise failures.pop()
        return real_store(*args)

    monkeypatch.setattr(shipper.outbox, "store", flaky_store)
    task = asyncio.create_task(shipper.run())
    try:
        for i in range(3):
            await shipper.put(line(f"line {i}"), ("c1/stdout", Cursor(TS, i + 1)))
        await asyncio.wait_for(shipper.settled(), 10)
        assert shipper.outbox.pending() == 3
        assert shipper.outbox.cursors_of("c1") == {"stdout": Cursor(TS, 3)}
        assert shipper.status()["storeError"] is None
        assert not task.done()
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_a_stop_during_a_store_loses_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    uploader, clock = FakeUploader(), Clock()
    shipper = shipper_for(tmp_path, uploader, clock)
    real_store = shipper.outbox.store
    entered, release = threading.Event(), threading.Event()

    def slow_store(*args: Any) -> Any:
        entered.set()
        release.wait(10)
        return real_store(*args)

    monkeypatch.setattr(shipper.outbox, "store", slow_store)
    task = asyncio.create_task(shipper.run())
    for i in range(5):
        await shipper.put(line(f"old {i}"), None)
    await asyncio.to_thread(entered.wait, 10)  # the first batch is being stored
    for i in range(3):
        await shipper.put(line(f"new {i}"), None)
    task.cancel()
    release.set()
    await asyncio.gather(task, return_exceptions=True)
    stored = [
        LogRecord.model_validate_json(b).message for _, b in shipper.outbox.oldest(100, 10**6)
    ]
    assert stored == [f"old {i}" for i in range(5)] + [f"new {i}" for i in range(3)]


class CloudAhead(FakeUploader):
    """A cloud that already holds this device's records up to 1000 (the outbox was lost)."""

    async def upload(self, bodies: Sequence[str]) -> LogUploadResult:
        records = [LogRecord.model_validate_json(b) for b in bodies]
        fresh = [r for r in records if r.seq > 1000]
        self.received += fresh
        last = max([1000, *(r.seq for r in self.received)])
        return LogUploadResult(
            accepted=len(fresh), duplicates=len(records) - len(fresh), lastSeq=last
        )


async def test_records_numbered_behind_the_cloud_are_renumbered_not_lost(tmp_path: Path) -> None:
    uploader, clock = CloudAhead(), Clock()
    shipper = shipper_for(tmp_path, uploader, clock)
    task = asyncio.create_task(shipper.run())
    try:
        for i in range(5):
            await shipper.put(line(f"line {i}"), None)
        await asyncio.wait_for(shipper.settled(), 10)
        assert await shipper.drain()
        assert [(r.seq, r.message) for r in uploader.received] == [
            (1001 + i, f"line {i}") for i in range(5)
        ]
        await shipper.put(line("next"), None)
        await asyncio.wait_for(shipper.settled(), 10)
        assert await shipper.drain()
        assert uploader.received[-1].seq == 1006
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

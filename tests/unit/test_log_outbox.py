"""The log outbox (SQLite buffer of records on their way to the cloud) and the resume point
that keeps container lines from being stored twice or skipped across agent restarts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from iotistic_agent.engine.protocol import ContainerLogLine
from iotistic_agent.logs.collector import ContainerResume, ResumePoint, record_of
from iotistic_agent.logs.outbox import Cursor, LogOutbox
from iotistic_contracts.logs import MAX_LOG_MESSAGE_CHARS, LogRecord

TS = "2026-11-25T10:00:00.000000001Z"


def fields(message: str) -> dict[str, object]:
    return {"timestamp": TS, "level": "info", "source": "agent", "message": message}


def test_records_get_contiguous_sequence_numbers_that_survive_a_reopen(tmp_path: Path) -> None:
    outbox = LogOutbox(tmp_path / "o.sqlite", max_records=100)
    first = outbox.store([fields("a"), fields("b")])
    assert (first.first_seq, first.last_seq, first.dropped) == (1, 2, 0)
    outbox.remove_through(2)  # uploaded
    outbox.close()
    again = LogOutbox(tmp_path / "o.sqlite", max_records=100)
    stored = again.store([fields("c")])
    assert stored.first_seq == 3  # never reused, even with the table empty
    [(seq, body)] = again.oldest(10, 10_000)
    record = LogRecord.model_validate_json(body)
    assert (seq, record.seq, record.message) == (3, 3, "c")


def test_the_cursor_moves_with_its_lines(tmp_path: Path) -> None:
    outbox = LogOutbox(tmp_path / "o.sqlite", max_records=100)
    assert outbox.cursors_of("c1") == {}
    outbox.store([fields("x")], {"c1/stdout": Cursor(TS, 2)})
    assert outbox.cursors_of("c1") == {"stdout": Cursor(TS, 2)}
    outbox.store([], {"c1/stdout": Cursor("2026-11-25T10:00:01.000000000Z", 1)})
    assert outbox.cursors_of("c1") == {"stdout": Cursor("2026-11-25T10:00:01.000000000Z", 1)}
    outbox.store([], {"c2/stdout": Cursor(TS, 1)})
    assert outbox.forget_cursors({"c2"}) == 1
    assert outbox.cursors_of("c1") == {} and outbox.cursors_of("c2") != {}


def test_a_failed_store_moves_no_cursor_and_stores_nothing(tmp_path: Path) -> None:
    outbox = LogOutbox(tmp_path / "o.sqlite", max_records=100)
    circular: dict[str, object] = {}
    circular["self"] = circular
    with pytest.raises(ValueError, match="Circular"):
        outbox.store(
            [fields("ok"), {**fields("bad"), "context": circular}], {"c1/stdout": Cursor(TS, 1)}
        )
    assert outbox.pending() == 0
    assert outbox.cursors_of("c1") == {}
    assert outbox.store([fields("next")]).first_seq == 1


def test_the_bound_drops_the_oldest_and_counts_them(tmp_path: Path) -> None:
    outbox = LogOutbox(tmp_path / "o.sqlite", max_records=5)
    outbox.store([fields(str(i)) for i in range(4)])
    stored = outbox.store([fields(str(i)) for i in range(4, 8)])
    assert stored.dropped == 3
    assert outbox.pending() == 5
    assert outbox.dropped() == 3
    assert [seq for seq, _ in outbox.oldest(100, 1_000_000)] == [4, 5, 6, 7, 8]


def test_oldest_fills_a_byte_budget_but_always_returns_one(tmp_path: Path) -> None:
    outbox = LogOutbox(tmp_path / "o.sqlite", max_records=100)
    outbox.store([fields("x" * 100) for _ in range(10)])
    one_size = len(outbox.oldest(1, 1_000_000)[0][1]) + 1
    assert len(outbox.oldest(100, 3 * one_size)) == 3
    assert len(outbox.oldest(100, 1)) == 1
    assert len(outbox.oldest(4, 1_000_000)) == 4


def test_values_json_cannot_carry_travel_as_text(tmp_path: Path) -> None:
    outbox = LogOutbox(tmp_path / "o.sqlite", max_records=100)
    outbox.store([{**fields("m"), "context": {"path": tmp_path}}])
    body = json.loads(outbox.oldest(1, 10_000)[0][1])
    assert body["context"] == {"path": str(tmp_path)}


# --- resume point ----------------------------------------------------------------------------


def stamp(second: int, nanos: int) -> str:
    return f"2026-11-25T10:00:{second:02d}.{nanos:09d}Z"


def test_without_a_cursor_every_line_is_new_and_counted_per_timestamp() -> None:
    resume = ResumePoint(None)
    assert resume.since_s is None
    assert resume.advance(stamp(1, 5)) == Cursor(stamp(1, 5), 1)
    assert resume.advance(stamp(1, 5)) == Cursor(stamp(1, 5), 2)
    assert resume.advance(stamp(2, 0)) == Cursor(stamp(2, 0), 1)


def test_resuming_skips_exactly_what_was_stored() -> None:
    resume = ResumePoint(Cursor(stamp(3, 7), 2))
    assert resume.since_s == pytest.approx(1_795_600_803.0)
    # The engine starts at the cursor's whole second: earlier lines of it were stored.
    assert resume.advance(stamp(3, 1)) is None
    assert resume.advance(stamp(3, 7)) is None
    assert resume.advance(stamp(3, 7)) is None
    # A third line with the same timestamp is new.
    assert resume.advance(stamp(3, 7)) == Cursor(stamp(3, 7), 3)
    assert resume.advance(stamp(4, 0)) == Cursor(stamp(4, 0), 1)
    # stderr stamped a moment before stdout, once past the resume point: stored, cursor kept.
    assert resume.advance(stamp(3, 9)) == Cursor(stamp(4, 0), 1)


def test_record_of_a_container_line_is_a_valid_wire_record() -> None:
    line = ContainerLogLine(stamp(5, 123), "stderr", "x" * (MAX_LOG_MESSAGE_CHARS + 10))
    fields_ = record_of(line, "shop", "web")
    record = LogRecord.model_validate({"seq": 1, **fields_})
    assert (record.app, record.service, record.stream, record.source) == (
        "shop",
        "web",
        "stderr",
        "container",
    )
    assert record.truncated and len(record.message) == MAX_LOG_MESSAGE_CHARS
    assert record.timestamp == stamp(5, 123)


def test_each_stream_resumes_from_its_own_cursor() -> None:
    # stdout got further than stderr before the restart (separate engine tasks stamp them).
    resume = ContainerResume(
        "c1", {"stdout": Cursor(stamp(5, 0), 1), "stderr": Cursor(stamp(3, 0), 1)}
    )
    assert resume.since_s == pytest.approx(1_795_600_803.0)
    assert resume.advance(ContainerLogLine(stamp(4, 0), "stdout", "old")) is None
    # A stderr line stamped before stdout's cursor but after its own is new: not lost.
    assert resume.advance(ContainerLogLine(stamp(4, 0), "stderr", "late")) == (
        "c1/stderr",
        Cursor(stamp(4, 0), 1),
    )
    assert resume.advance(ContainerLogLine(stamp(6, 0), "stdout", "new")) == (
        "c1/stdout",
        Cursor(stamp(6, 0), 1),
    )


def test_cursors_are_read_back_by_container_and_forgotten_with_it(tmp_path: Path) -> None:
    outbox = LogOutbox(tmp_path / "o.sqlite", max_records=100)
    outbox.store(
        [], {"c1/stdout": Cursor(TS, 1), "c1/stderr": Cursor(TS, 2), "c10/stdout": Cursor(TS, 3)}
    )
    assert outbox.cursors_of("c1") == {"stdout": Cursor(TS, 1), "stderr": Cursor(TS, 2)}
    assert outbox.forget_cursors({"c10"}) == 2
    assert outbox.cursors_of("c1") == {} and outbox.cursors_of("c10") == {"stdout": Cursor(TS, 3)}


def test_the_first_start_of_shipping_is_remembered(tmp_path: Path) -> None:
    outbox = LogOutbox(tmp_path / "o.sqlite", max_records=100)
    assert outbox.started_at(1000.5) == 1000.0
    assert outbox.started_at(2000.0) == 1000.0


def test_the_byte_bound_drops_the_oldest_and_uploads_give_the_space_back(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite"
    outbox = LogOutbox(path, max_records=100_000, max_bytes=2 * 1024 * 1024)
    long_line = "x" * 16_000
    for _ in range(20):
        outbox.store([fields(long_line) for _ in range(10)])  # about 3.2 MB in all
    assert outbox.stored_bytes() <= 2 * 1024 * 1024
    assert outbox.dropped() > 0
    kept = outbox.oldest(1000, 10**9)
    assert kept[-1][0] == 200  # the newest are the ones kept
    assert outbox.stored_bytes() == sum(len(body.encode()) for _, body in kept)
    before = path.stat().st_size + (tmp_path / "o.sqlite-wal").stat().st_size
    outbox.remove_through(kept[-1][0])
    outbox._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    after = path.stat().st_size
    assert outbox.stored_bytes() == 0
    assert after < before / 2, (before, after)

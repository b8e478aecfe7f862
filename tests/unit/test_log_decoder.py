"""Docker's log stream (multiplexed frames or a TTY's raw entries) decoded into lines."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from iotistic_agent.engine.log_stream import (
    MAX_LINE_BYTES,
    PARTIAL_ENTRY_BYTES,
    DockerLogDecoder,
    FrameDemuxer,
    LineAssembler,
    LogStreamError,
    timestamp_key,
)
from iotistic_agent.engine.protocol import ContainerLogLine

T1 = "2026-01-02T03:04:05.000000001Z"
T2 = "2026-01-02T03:04:05.100000002Z"
T3 = "2026-01-02T03:04:06.999999999Z"
KINDS = {"stdout": 1, "stderr": 2}


def frame(stream: str, payload: bytes | str, kind: int | None = None) -> bytes:
    data = payload.encode() if isinstance(payload, str) else payload
    return struct.pack(">BxxxL", KINDS[stream] if kind is None else kind, len(data)) + data


def entries(timestamp: str, text: bytes) -> list[bytes]:
    """What the daemon stores for one written line: 16 KiB pieces, each with a timestamp."""
    body, newline = (text[:-1], b"\n") if text.endswith(b"\n") else (text, b"")
    pieces = [body[i : i + PARTIAL_ENTRY_BYTES] for i in range(0, len(body), PARTIAL_ENTRY_BYTES)]
    pieces = pieces or [b""]
    pieces[-1] += newline
    if len(pieces[-1]) > PARTIAL_ENTRY_BYTES:  # exactly 16 KiB, then the newline alone
        pieces[-1:] = [pieces[-1][:-1], b"\n"]
    return [timestamp.encode() + b" " + piece for piece in pieces]


def decode(
    body: bytes, *, tty: bool = False, read_size: int | None = None
) -> list[ContainerLogLine]:
    decoder = DockerLogDecoder(tty=tty)
    step = read_size or max(1, len(body))
    lines: list[ContainerLogLine] = []
    for start in range(0, len(body), step):
        lines += decoder.feed(body[start : start + step])
    return lines + decoder.finish()


def line(timestamp: str, stream: str, message: str) -> ContainerLogLine:
    return ContainerLogLine(timestamp, stream, message)  # type: ignore[arg-type]


def test_one_frame_per_line_as_docker_sends_them() -> None:
    body = frame("stdout", f"{T1} out1\n") + frame("stderr", f"{T2} err1\n")
    assert decode(body) == [line(T1, "stdout", "out1"), line(T2, "stderr", "err1")]


@pytest.mark.parametrize("read_size", [1, 3, 7, 8, 9, 41, 4096])
def test_headers_and_payloads_split_across_reads(read_size: int) -> None:
    body = frame("stdout", f"{T1} first\n") + frame("stderr", f"{T2} second\n")
    body += frame("stdout", f"{T3} third\n")
    assert decode(body, read_size=read_size) == [
        line(T1, "stdout", "first"),
        line(T2, "stderr", "second"),
        line(T3, "stdout", "third"),
    ]


def test_several_lines_in_one_frame() -> None:
    body = frame("stdout", f"{T1} a\n{T2} b\nc\n")
    # A line without its own timestamp keeps the last one seen on its stream.
    assert decode(body) == [
        line(T1, "stdout", "a"),
        line(T2, "stdout", "b"),
        line(T2, "stdout", "c"),
    ]


def test_frames_split_mid_line_with_and_without_a_timestamp_on_the_continuation() -> None:
    body = frame("stdout", f"{T1} hel") + frame("stdout", f"{T2} lo ") + frame("stdout", "world\n")
    assert decode(body) == [line(T1, "stdout", "hello world")]


def test_interleaved_streams_keep_separate_partial_lines() -> None:
    body = (
        frame("stdout", f"{T1} out-start ")
        + frame("stderr", f"{T1} err-start ")
        + frame("stderr", f"{T2} err-end\n")
        + frame("stdout", f"{T2} out-end\n")
        + frame("stderr", f"{T3} err2\n")
    )
    assert decode(body, read_size=5) == [
        line(T1, "stderr", "err-start err-end"),
        line(T1, "stdout", "out-start out-end"),
        line(T3, "stderr", "err2"),
    ]


def test_partial_trailing_lines_come_out_at_the_end() -> None:
    body = frame("stdout", f"{T1} complete\n") + frame("stderr", f"{T3} no newline (err)")
    body += frame("stdout", f"{T2} no newline (out)")
    decoder = DockerLogDecoder(tty=False)
    assert decoder.feed(body) == [line(T1, "stdout", "complete")]
    assert decoder.finish() == [
        line(T2, "stdout", "no newline (out)"),
        line(T3, "stderr", "no newline (err)"),
    ]
    assert decoder.finish() == []


def test_a_100_kb_line_cut_into_16_kib_entries_comes_out_whole() -> None:
    text = bytes(ord("a") + i % 26 for i in range(100 * 1024))
    body = b"".join(frame("stdout", e) for e in entries(T1, text + b"\n"))
    body += frame("stderr", f"{T2} after\n")
    assert decode(body, read_size=1000) == [
        line(T1, "stdout", text.decode()),
        line(T2, "stderr", "after"),
    ]


def test_a_multibyte_character_cut_between_entries_is_intact() -> None:
    text = "é" * PARTIAL_ENTRY_BYTES  # 2 bytes each: the cuts fall inside characters
    pieces = entries(T1, text.encode()[: PARTIAL_ENTRY_BYTES + 1] + b"\n")
    assert decode(b"".join(frame("stdout", p) for p in pieces)) == [
        line(T1, "stdout", text[: PARTIAL_ENTRY_BYTES // 2] + "\ufffd")
    ]
    whole = b"".join(frame("stdout", p) for p in entries(T1, text.encode() + b"\n"))
    assert decode(whole, read_size=333) == [line(T1, "stdout", text)]


def test_empty_lines_and_empty_frames() -> None:
    body = frame("stdout", f"{T1} \n") + frame("stdout", b"") + frame("stdout", f"{T2} x\n")
    assert decode(body) == [line(T1, "stdout", ""), line(T2, "stdout", "x")]


def test_a_line_that_never_ends_is_cut_to_bound_memory() -> None:
    assembler = LineAssembler()
    out: list[ContainerLogLine] = []
    chunk = b"x" * PARTIAL_ENTRY_BYTES
    for _ in range(MAX_LINE_BYTES // PARTIAL_ENTRY_BYTES + 1):
        out += assembler.entry("stdout", T1.encode() + b" " + chunk)
    assert [len(x.message) for x in out] == [MAX_LINE_BYTES]
    assert [len(x.message) for x in assembler.finish()] == [PARTIAL_ENTRY_BYTES]


def test_an_error_frame_or_garbage_raises() -> None:
    with pytest.raises(LogStreamError, match="the engine reported: boom"):
        FrameDemuxer().feed(frame("stdout", "boom\n", kind=3))
    with pytest.raises(LogStreamError, match="malformed"):
        FrameDemuxer().feed(b"HTTP/1.1 200 OK\r\n")


def test_tty_raw_entries_with_crlf() -> None:
    body = f"{T1} one\r\n{T2} two\r\n{T3} no newline".encode()
    expected = [
        line(T1, "stdout", "one"),
        line(T2, "stdout", "two"),
        line(T3, "stdout", "no newline"),
    ]
    for read_size in (1, 2, 10, 31, 1000):
        assert decode(body, tty=True, read_size=read_size) == expected


def test_tty_long_line_pieces_lose_their_timestamps() -> None:
    text = b"y" * (3 * PARTIAL_ENTRY_BYTES + 5)
    body = b"".join(entries(T1, text + b"\r\n")) + f"{T2} next\r\n".encode()
    assert decode(body, tty=True, read_size=4000) == [
        line(T1, "stdout", text.decode()),
        line(T2, "stdout", "next"),
    ]


written = st.lists(
    st.tuples(
        st.sampled_from(["stdout", "stderr"]),
        st.one_of(
            st.text(st.characters(codec="utf-8", exclude_characters="\n"), max_size=40),
            st.integers(1, 3 * PARTIAL_ENTRY_BYTES + 1).map(lambda n: "z" * n),
        ),
        st.booleans(),  # ended with a newline
    ),
    max_size=12,
)


@settings(max_examples=150, deadline=None)
@given(written=written, read_size=st.integers(1, 70_000), tty=st.booleans())
def test_any_output_read_in_any_pieces_decodes_to_what_was_written(
    written: list[tuple[str, str, bool]], read_size: int, tty: bool
) -> None:
    # Unended text is only valid last on its stream (the daemon would glue it to the next).
    body = b""
    expected: list[ContainerLogLine] = []
    unended: dict[str, ContainerLogLine] = {}
    for i, (stream, text, ended) in enumerate(written):
        if tty:
            stream = "stdout"
        if stream in unended:
            continue
        stamp = f"2026-01-02T03:04:{i:02d}.000000000Z"
        raw = text.encode() + (b"\r\n" if tty and ended else b"\n" if ended else b"")
        pieces = entries(stamp, raw)
        body += b"".join(pieces) if tty else b"".join(frame(stream, p) for p in pieces)
        if ended:
            expected.append(line(stamp, stream, text))
        else:
            unended[stream] = line(stamp, stream, text)
    expected += sorted(unended.values(), key=lambda x: x.timestamp)
    got = decode(body, tty=tty, read_size=read_size)
    # Lines of one stream keep their order; the decoder may only reorder across streams.
    for stream in ("stdout", "stderr"):
        assert [x for x in got if x.stream == stream] == [x for x in expected if x.stream == stream]


# --- reading the log again after a followed stream ended ----------------------------------


def test_resume_since_is_the_earliest_streams_last_entry_in_docker_form() -> None:
    decoder = DockerLogDecoder(tty=False)
    assert decoder.resume_since() is None  # nothing seen: nothing tells where to start
    decoder.feed(frame("stderr", f"{T1} e\n") + frame("stdout", f"{T3} o\n"))
    assert decoder.resume_since() == "1767323045.000000001"  # T1 as UNIX seconds.nanos
    assert timestamp_key(T2) == (1767323045, 100000002)
    assert timestamp_key("2026-01-02T03:04:05+01:00") is None


def test_a_second_body_from_the_last_entry_adds_only_what_is_new() -> None:
    piece = b"p" * PARTIAL_ENTRY_BYTES
    followed = [
        frame("stderr", f"{T1} err1\n"),
        frame("stdout", f"{T1} out1\n"),
        frame("stdout", T2.encode() + b" " + piece),  # first piece of a long line...
        frame("stdout", T2.encode() + b" " + piece),
    ]
    again = [
        *followed,  # the engine repeats everything from `since` (inclusive) on
        frame("stdout", f"{T2} end of the long line\n"),
        frame("stderr", f"{T3} err2\n"),
        frame("stdout", f"{T3} unended"),  # what a followed stream loses at the stop
    ]
    decoder = DockerLogDecoder(tty=False)
    lines = decoder.feed(b"".join(followed))
    assert lines == [line(T1, "stderr", "err1"), line(T1, "stdout", "out1")]
    assert decoder.resume_since() == "1767323045.000000001"
    decoder.next_body()
    lines += decoder.feed(b"".join(again)[:-5]) + decoder.feed(b"".join(again)[-5:])
    lines += decoder.finish()
    assert lines == [
        line(T1, "stderr", "err1"),
        line(T1, "stdout", "out1"),
        line(T2, "stdout", "p" * 2 * PARTIAL_ENTRY_BYTES + "end of the long line"),
        line(T3, "stderr", "err2"),
        line(T3, "stdout", "unended"),
    ]


def test_a_second_body_that_starts_later_than_expected_loses_nothing_new() -> None:
    # An engine whose `since` were exclusive would not repeat the last entries.
    decoder = DockerLogDecoder(tty=True)
    assert decoder.feed(f"{T1} one\r\n".encode()) == [line(T1, "stdout", "one")]
    decoder.next_body()
    assert decoder.feed(f"{T3} two\r\n{T3} three".encode()) == [line(T3, "stdout", "two")]
    assert decoder.finish() == [line(T3, "stdout", "three")]

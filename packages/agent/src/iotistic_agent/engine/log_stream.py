"""Decode the body of Docker's `GET /containers/{id}/logs?timestamps=1` into lines.

Pure code (no I/O): `DockerLogDecoder.feed` takes the body in whatever pieces the HTTP
client reads, `finish` flushes what is left at the end. What the engine sends (Docker 20.10,
API 1.41; tests/integration/test_logs_api.py checks it):

- Without a TTY the body is multiplexed: frames of an 8-byte header (stream byte: 1 stdout,
  2 stderr; three zero bytes; big-endian uint32 payload length) and the payload. Frames do
  not follow the HTTP client's read boundaries.
- A frame is one log entry, `<RFC 3339 timestamp, 9 fractional digits, Z> <text>`. The
  daemon cuts a line longer than 16 KiB into entries of 16 KiB without a newline; every
  piece carries a timestamp prefix (the first piece's). Text the container never ended with
  a newline is an entry without newline when the container stops.
- With a TTY the body is the same entries without framing, all on stdout, lines ending in
  "\\r\\n".
- stdout and stderr are copied by separate daemon tasks, so across the two streams the order
  is the daemon's (a stderr line written just after a stdout line may come first).
"""

from __future__ import annotations

import calendar
import functools
import re
import struct
import time
from dataclasses import dataclass, field
from typing import Literal

from .protocol import ContainerLogLine, EngineError

Stream = Literal["stdout", "stderr"]

HEADER = struct.Struct(">BxxxL")
# `2026-01-02T03:04:05.123456789Z ` (Docker always sends this form); offsets tolerated.
TIMESTAMP = re.compile(rb"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,9})?(?:Z|[+-]\d\d:\d\d) ")
TIMESTAMP_MAX = len(b"2006-01-02T15:04:05.999999999+07:00 ")
_UTC_TIMESTAMP = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?Z")
PARTIAL_ENTRY_BYTES = 16 * 1024  # the daemon's longest entry (moby's logger buffer)
MAX_LINE_BYTES = 1024 * 1024  # a line that never ends is cut here: memory stays bounded
MAX_FRAME_BYTES = 16 * 1024 * 1024  # far above any real frame: a larger one is garbage

_STREAMS: dict[int, Stream] = {0: "stdout", 1: "stdout", 2: "stderr"}
_SYSTEM_ERROR = 3  # API 1.42+: the daemon reports a failure inside the stream


class LogStreamError(EngineError):
    """The log stream is malformed or the daemon reported an error inside it."""


class FrameDemuxer:
    """Split a multiplexed body into (stream, payload) frames, whatever the read sizes."""

    def __init__(self) -> None:
        self._buf = bytearray()

    @property
    def buffered(self) -> int:
        return len(self._buf)

    def feed(self, data: bytes) -> list[tuple[Stream, bytes]]:
        self._buf += data
        frames: list[tuple[Stream, bytes]] = []
        pos = 0
        buf = self._buf
        while len(buf) - pos >= HEADER.size:
            kind, length = HEADER.unpack_from(buf, pos)
            if length > MAX_FRAME_BYTES or (kind not in _STREAMS and kind != _SYSTEM_ERROR):
                raise LogStreamError(f"malformed log stream (frame type {kind}, {length} bytes)")
            end = pos + HEADER.size + length
            if len(buf) < end:
                break
            payload = bytes(buf[pos + HEADER.size : end])
            pos = end
            if kind == _SYSTEM_ERROR:
                text = payload.decode("utf-8", "replace").strip()
                raise LogStreamError(f"the engine reported: {text}")
            if payload:
                frames.append((_STREAMS[kind], payload))
        del buf[:pos]
        return frames


class RawEntrySplitter:
    """A TTY container's body: entries without framing. One ends after its newline, or
    after 16 KiB of text (a piece of a longer line), and the next starts with a timestamp."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        self._buf += data
        entries: list[bytes] = []
        buf = self._buf
        pos = 0
        while pos < len(buf):
            stamp = TIMESTAMP.match(buf, pos)
            if stamp is None and len(buf) - pos < TIMESTAMP_MAX and b"\n" not in buf[pos:]:
                break  # too little to tell whether a timestamp starts here
            text = stamp.end() if stamp else pos
            newline = buf.find(b"\n", text, text + PARTIAL_ENTRY_BYTES)
            if newline >= 0:
                end = newline + 1
            elif len(buf) - text >= PARTIAL_ENTRY_BYTES:
                end = text + PARTIAL_ENTRY_BYTES
            else:
                break
            entries.append(bytes(buf[pos:end]))
            pos = end
        del buf[:pos]
        return entries

    def finish(self) -> list[bytes]:
        rest, self._buf = bytes(self._buf), bytearray()
        return [rest] if rest else []


@dataclass
class _Partial:
    timestamp: str
    text: bytearray = field(default_factory=bytearray)


class LineAssembler:
    """Join entries into lines, per stream: strip each entry's timestamp, keep a line's
    first timestamp, glue the pieces of a long line, split an entry holding several lines."""

    def __init__(self, *, tty: bool = False) -> None:
        self._tty = tty
        self._partial: dict[Stream, _Partial] = {}
        self._last_stamp: dict[Stream, str] = {}  # for text that comes without one

    def entry(self, stream: Stream, data: bytes) -> list[ContainerLogLine]:
        lines: list[ContainerLogLine] = []
        partial = self._partial.pop(stream, None)
        pos, size = 0, len(data)
        while pos < size:
            stamp = TIMESTAMP.match(data, pos)
            if stamp is not None:
                pos = stamp.end()
                self._last_stamp[stream] = stamp.group()[:-1].decode("ascii")
            if partial is None:
                partial = _Partial(self._last_stamp.get(stream, ""))
            newline = data.find(b"\n", pos)
            end = size if newline < 0 else newline
            partial.text += data[pos:end]
            if newline < 0:
                if len(partial.text) >= MAX_LINE_BYTES:
                    lines.append(self._line(stream, partial, ended=False))
                    partial = None
                break
            lines.append(self._line(stream, partial, ended=True))
            partial = None
            pos = newline + 1
        if partial is not None:
            self._partial[stream] = partial
        return lines

    def finish(self) -> list[ContainerLogLine]:
        """Lines the container never ended (it stopped, or the stream was cut)."""
        pending, self._partial = self._partial, {}
        lines = [self._line(stream, p, ended=False) for stream, p in pending.items()]
        return sorted(lines, key=lambda line: line.timestamp)

    def _line(self, stream: Stream, partial: _Partial, *, ended: bool) -> ContainerLogLine:
        text = bytes(partial.text)
        if self._tty and ended and text.endswith(b"\r"):  # a terminal ends lines with \r\n
            text = text[:-1]
        return ContainerLogLine(partial.timestamp, stream, text.decode("utf-8", "replace"))


def timestamp_key(timestamp: str) -> tuple[int, int] | None:
    """Docker's `...Z` timestamp as (UNIX seconds, nanoseconds), or None for another form."""
    match = _UTC_TIMESTAMP.fullmatch(timestamp)
    if match is None:
        return None
    return _utc_seconds(match[1]), int((match[2] or "").ljust(9, "0"))


@functools.lru_cache(maxsize=64)
def _utc_seconds(text: str) -> int:
    # Cached: the lines of a busy container share their second, and strptime is slow.
    return calendar.timegm(time.strptime(text, "%Y-%m-%dT%H:%M:%S"))


class DockerLogDecoder:
    """The whole pipeline for one container's log: body pieces in, complete lines out.

    A followed stream ends when the container stops, and Docker 20.10 may end it before
    the text the container never ended with a newline: `resume_since` and `next_body` let
    the caller read the log once more from the last entry seen and get only what is new."""

    def __init__(self, *, tty: bool) -> None:
        self._tty = tty
        self._frames = FrameDemuxer()
        self._raw = RawEntrySplitter()
        self._lines = LineAssembler(tty=tty)
        # Per stream: the last entry's timestamp and how many entries carried it.
        self._seen: dict[Stream, tuple[tuple[int, int] | None, int]] = {}
        self._skip: dict[Stream, tuple[tuple[int, int] | None, int]] = {}

    def feed(self, data: bytes) -> list[ContainerLogLine]:
        lines: list[ContainerLogLine] = []
        if self._tty:
            for entry in self._raw.feed(data):
                lines += self._entry("stdout", entry)
        else:
            for stream, payload in self._frames.feed(data):
                lines += self._entry(stream, payload)
        return lines

    def finish(self) -> list[ContainerLogLine]:
        # An incomplete frame at the end is a cut stream: what it held is lost either way.
        lines: list[ContainerLogLine] = []
        if self._tty:
            for entry in self._raw.finish():
                lines += self._entry("stdout", entry)
        return lines + self._lines.finish()

    def resume_since(self) -> str | None:
        """Docker's `since` (`seconds.nanoseconds`) that re-reads from the earliest of the
        streams' last entries; None when nothing was seen or a timestamp is not Docker's."""
        keys = [key for key, _ in self._seen.values()]
        if not keys or any(key is None for key in keys):
            return None
        seconds, nanos = min(key for key in keys if key is not None)
        return f"{seconds}.{nanos:09d}"

    def next_body(self) -> None:
        """Decode a new response that repeats the log from `resume_since` (or from the
        start when nothing was seen): entries already seen are skipped."""
        self._frames, self._raw = FrameDemuxer(), RawEntrySplitter()
        self._skip = dict(self._seen)

    def _entry(self, stream: Stream, data: bytes) -> list[ContainerLogLine]:
        stamp = TIMESTAMP.match(data)
        key = timestamp_key(stamp.group()[:-1].decode("ascii")) if stamp else None
        skip_to, skip_repeats = self._skip.get(stream, (None, 0))
        if skip_to is not None and key is not None:
            if key < skip_to or (key == skip_to and skip_repeats > 0):
                left = skip_repeats - 1 if key == skip_to else skip_repeats
                self._skip[stream] = (skip_to, left)
                return []
            del self._skip[stream]  # past what was seen: the rest of this stream is new
        seen, repeats = self._seen.get(stream, (None, 0))
        self._seen[stream] = (key, repeats + 1 if seen == key and stream in self._seen else 1)
        return self._lines.entry(stream, data)

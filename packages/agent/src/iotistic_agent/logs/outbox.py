"""The disk buffer of log records on their way to the cloud, with the container log cursors.

A SQLite file of its own (``<data dir>/log-outbox.sqlite``), so that a burst of container
output never holds the lock of the agent's main database. Every record gets the device's next
sequence number when it is stored; uploads read the oldest first and delete them once the
cloud took them. The cursor of a container (the engine timestamp of the last line stored and
how many lines carried exactly that timestamp) is written in the same transaction as its
lines, so after a restart the agent resumes exactly after what it stored: no line twice, none
missing.

Bounded: beyond ``max_records`` records or ``max_bytes`` of them the oldest are dropped
(counted, and visible to the cloud as a gap in the sequence); pages freed by uploads are handed
back to the file system (incremental auto-vacuum). ``synchronous=NORMAL``: a power cut may lose
the last second of log lines, never the file.

Every method takes the outbox's lock: the writer, the uploader and the container followers
call it from worker threads, and one SQLite connection must not run two transactions at once.
"""

from __future__ import annotations

import json
import re
import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..private_files import PRIVATE_FILE_MODE, private_file

# Disk the outbox may take: long lines (up to 16 KiB each) must not fill an SD card offline.
DEFAULT_MAX_BYTES = 64 * 1024 * 1024
_SURROGATE = re.compile("[\ud800-\udfff]")
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS records (seq INTEGER PRIMARY KEY, body TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS cursors ("
    " container TEXT PRIMARY KEY, timestamp TEXT NOT NULL, count INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL)",
)


@dataclass(frozen=True, slots=True)
class Cursor:
    """The last stored line of a container: its engine timestamp, and how many stored lines
    carry exactly that timestamp (the engine may give several lines the same one)."""

    timestamp: str
    count: int


@dataclass(frozen=True, slots=True)
class Stored:
    first_seq: int
    last_seq: int
    dropped: int  # oldest records dropped to stay within the bound


class LogOutbox:
    def __init__(self, path: Path, max_records: int, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self._lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)
        # Container output may hold anything: owner only (an older release's file too).
        path.touch(mode=PRIVATE_FILE_MODE, exist_ok=True)
        private_file(path)
        self._conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        # Pages freed by uploads go back to the file system (set before the tables exist).
        self._conn.execute("PRAGMA auto_vacuum=INCREMENTAL")
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute("PRAGMA busy_timeout=5000")
        with self._transaction():
            for statement in _SCHEMA:
                self._conn.execute(statement)
        self.max_records = max_records
        self.max_bytes = max_bytes

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")

    def _counter(self, name: str) -> int:
        row = self._conn.execute("SELECT value FROM counters WHERE name = ?", (name,)).fetchone()
        return 0 if row is None else int(row[0])

    def _set_counter(self, name: str, value: int) -> None:
        self._conn.execute(
            "INSERT INTO counters (name, value) VALUES (?, ?) "
            "ON CONFLICT(name) DO UPDATE SET value = excluded.value",
            (name, value),
        )

    def store(
        self, records: Sequence[Mapping[str, Any]], cursors: Mapping[str, Cursor] | None = None
    ) -> Stored:
        """Number and store ``records`` (record fields without ``seq``), and move the given
        container cursors, in one transaction."""
        with self._lock:
            with self._transaction():
                last = self._counter("last_seq")
                first = last + 1
                rows = []
                size = 0
                for offset, fields in enumerate(records):
                    seq = first + offset
                    # default=str: a context value that JSON cannot carry travels as its text.
                    body = json.dumps(
                        {"seq": seq, **fields},
                        separators=(",", ":"),
                        ensure_ascii=False,
                        default=str,
                    )
                    if not body.isascii():
                        body = _encodable(body)
                    size += len(body.encode("utf-8"))
                    rows.append((seq, body))
                self._conn.executemany("INSERT INTO records (seq, body) VALUES (?, ?)", rows)
                last += len(rows)
                self._set_counter("last_seq", last)
                for container, cursor in (cursors or {}).items():
                    self._conn.execute(
                        "INSERT INTO cursors (container, timestamp, count) VALUES (?, ?, ?) "
                        "ON CONFLICT(container) DO UPDATE SET "
                        "timestamp = excluded.timestamp, count = excluded.count",
                        (container, cursor.timestamp, cursor.count),
                    )
                self._set_counter("bytes", self._counter("bytes") + size)
                # Sequence numbers are contiguous from the oldest kept: the bound in records is
                # arithmetic; the bound in bytes (long lines) drops the oldest until it fits.
                dropped = self._delete_through(last - self.max_records)
                excess = self._counter("bytes") - self.max_bytes
                if excess > 0:
                    dropped += self._delete_through(self._seq_freeing(excess))
                if dropped:
                    self._set_counter("dropped", self._counter("dropped") + dropped)
            return Stored(first, last, int(dropped))

    def _delete_through(self, seq: int) -> int:
        """Delete the records up to ``seq``, keeping the byte count; how many went."""
        count, size = self._conn.execute(
            "SELECT COUNT(*), COALESCE(SUM(length(CAST(body AS BLOB))), 0) FROM records "
            "WHERE seq <= ?",
            (seq,),
        ).fetchone()
        if count:
            self._conn.execute("DELETE FROM records WHERE seq <= ?", (seq,))
            self._set_counter("bytes", max(0, self._counter("bytes") - int(size)))
        return int(count)

    def _seq_freeing(self, excess: int) -> int:
        """The sequence number up to which the oldest records free ``excess`` bytes."""
        freed = 0
        last = 0
        for seq, size in self._conn.execute(
            "SELECT seq, length(CAST(body AS BLOB)) FROM records ORDER BY seq"
        ):
            freed += int(size)
            last = int(seq)
            if freed >= excess:
                break
        return last

    def oldest(self, max_records: int, max_bytes: int) -> list[tuple[int, str]]:
        """The oldest records, as many as fit in ``max_bytes`` of NDJSON (at least one)."""
        with self._lock:
            out: list[tuple[int, str]] = []
            size = 0
            for seq, body in self._conn.execute(
                "SELECT seq, body FROM records ORDER BY seq LIMIT ?", (max_records,)
            ):
                size += len(body.encode("utf-8")) + 1
                if out and size > max_bytes:
                    break
                out.append((int(seq), str(body)))
            return out

    def remove_through(self, seq: int) -> None:
        with self._lock:
            with self._transaction():
                self._delete_through(seq)
            self._conn.execute("PRAGMA incremental_vacuum")

    def renumber_from(self, first: int) -> int:
        """Give the waiting records the numbers ``first``, ``first + 1``, ... (the cloud already
        holds higher numbers than this outbox: it was lost and started again at 1). Returns the
        new last number."""
        with self._lock, self._transaction():
            rows = self._conn.execute("SELECT seq, body FROM records ORDER BY seq").fetchall()
            self._conn.execute("DELETE FROM records")
            renumbered = []
            for offset, (seq, body) in enumerate(rows):
                prefix = f'{{"seq":{seq},'
                new = first + offset
                renumbered.append((new, f'{{"seq":{new},' + str(body)[len(prefix) :]))
            self._conn.executemany("INSERT INTO records (seq, body) VALUES (?, ?)", renumbered)
            last = first + len(rows) - 1
            self._set_counter("last_seq", last)
            return last

    def stored_bytes(self) -> int:
        with self._lock:
            return self._counter("bytes")

    def pending(self) -> int:
        with self._lock:
            row = self._conn.execute("SELECT MIN(seq), MAX(seq) FROM records").fetchone()
            return 0 if row[0] is None else int(row[1]) - int(row[0]) + 1

    def dropped(self) -> int:
        with self._lock:
            return self._counter("dropped")

    def cursors_of(self, container: str) -> dict[str, Cursor]:
        """A container's cursors by stream (keys ``<container>/<stream>``)."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT container, timestamp, count FROM cursors WHERE container >= ? "
                "AND container < ?",
                (container + "/", container + "0"),  # "0" sorts right after "/"
            ).fetchall()
        return {str(k).split("/", 1)[1]: Cursor(str(t), int(c)) for k, t, c in rows}

    def started_at(self, now: float) -> float:
        """When log shipping was first enabled on this device (``now`` the first time)."""
        with self._lock, self._transaction():
            found = self._counter("started_at")
            if found:
                return float(found)
            self._set_counter("started_at", int(now))
            return float(int(now))

    def forget_cursors(self, keep: set[str]) -> int:
        """Drop the cursors of containers that no longer exist."""
        with self._lock:
            known = [str(row[0]) for row in self._conn.execute("SELECT container FROM cursors")]
            gone = [(c,) for c in known if c.split("/", 1)[0] not in keep]
            if gone:
                self._conn.executemany("DELETE FROM cursors WHERE container = ?", gone)
            return len(gone)


def _encodable(text: str) -> str:
    """A lone surrogate (from a file name or bytes decoded with surrogateescape) cannot be
    sent as UTF-8: it becomes U+FFFD, not an upload the cloud refuses."""
    return _SURROGATE.sub("\ufffd", text)

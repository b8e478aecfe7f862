"""The agent's SQLite database: WAL, numbered SQL migrations tracked by PRAGMA user_version."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path

from ..private_files import PRIVATE_FILE_MODE, private_dir

_MIGRATION_NAME = re.compile(r"^(\d{3})_[a-z0-9_]+\.sql$")


def migrations() -> list[tuple[int, str, str]]:
    """(number, file name, SQL) of every bundled migration, in order."""
    found = []
    for entry in resources.files("iotistic_agent.store.migrations").iterdir():
        match = _MIGRATION_NAME.match(entry.name)
        if match:
            found.append((int(match.group(1)), entry.name, entry.read_text(encoding="utf-8")))
    found.sort()
    numbers = [n for n, _, _ in found]
    if numbers != list(range(1, len(numbers) + 1)):
        raise RuntimeError(f"migration numbers must be 1..n without gaps, found {numbers}")
    return found


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[None]:
    """One write transaction (the connection runs in autocommit mode otherwise)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
        conn.execute("COMMIT")
    except BaseException:
        # SQLite ends the transaction itself on some errors (a full disk, during a statement
        # or at COMMIT) and keeps it open on others: roll back only what is still open, so
        # that the error raised is the original one and the next BEGIN works.
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def open_database(path: Path) -> sqlite3.Connection:
    # The data directory: owner only, like everything in it (private_files).
    private_dir(path.parent)
    # Credentials end up in here: owner only. SQLite gives -wal and -shm the same mode.
    path.touch(mode=PRIVATE_FILE_MODE, exist_ok=True)
    path.chmod(PRIVATE_FILE_MODE)
    # isolation_level=None: transactions are explicit, so each migration is one BEGIN..COMMIT.
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA journal_mode=WAL")
    # FULL: a committed target must survive power loss, not only a crash of the process.
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("PRAGMA busy_timeout=5000")
    migrate(conn)
    return conn


def migrate(conn: sqlite3.Connection) -> int:
    current = conn.execute("PRAGMA user_version").fetchone()[0]
    for number, name, sql in migrations():
        if number <= current:
            continue
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in statements(sql):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {number}")
            conn.execute("COMMIT")
        except Exception as exc:
            conn.execute("ROLLBACK")
            raise RuntimeError(f"migration {name} failed: {exc}") from exc
        current = number
    return int(current)


def statements(sql: str) -> list[str]:
    """The statements of a migration, split where SQLite itself sees one end
    (``sqlite3.complete_statement``), so a ``;`` inside a literal, a comment or a trigger's
    body does not cut it. executescript() would do the splitting but commits first, and a
    migration must stay one transaction. A trailing incomplete statement is kept, for SQLite
    to refuse with its own message."""
    found: list[str] = []
    start = 0
    for end, char in enumerate(sql):
        if char == ";" and sqlite3.complete_statement(sql[start : end + 1]):
            found.append(sql[start : end + 1].strip())
            start = end + 1
    rest = sql[start:].strip()
    if rest and not _only_comments(rest):
        found.append(rest)
    return found


def _only_comments(sql: str) -> bool:
    return all(not line.strip() or line.strip().startswith("--") for line in sql.splitlines())

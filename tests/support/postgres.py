"""A throwaway PostgreSQL server for tests (Debian's server binaries, no system cluster).

    with PostgresServer() as server:
        url = server.create_database("mytest")   # postgresql://postgres@127.0.0.1:<port>/mytest
        server.pause()                            # stopped, its data kept (an outage)
        server.resume()                           # the same port and data again
        dump = server.dump("mytest", "backup.dump")   # pg_dump --format=custom
        server.restore(dump, "empty")                 # pg_restore --no-owner

In a fixture, ``with postgres_or_fail("the cloud tests") as server: yield server``.

initdb writes a fresh cluster into a temporary directory; the server listens on
127.0.0.1:<free port> with its unix socket in that directory and trust authentication, with
durability off (fsync) because the data is thrown away. PostgreSQL refuses to run as root,
so as root both run as the ``postgres`` OS user. A missing installation raises
PostgresUnavailable: callers fail the test run (they never skip).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any, Final

import pytest

from tests.integration.waiting import wait_for
from tests.support.net import free_port

START_TIMEOUT_S: Final = 60
STOP_TIMEOUT_S: Final = 30
SUPERUSER: Final = "postgres"
# Durability off: the data is thrown away, and tests should not wait for disks.
SERVER_SETTINGS: Final = (
    "fsync=off",
    "synchronous_commit=off",
    "full_page_writes=off",
    "max_connections=200",
)
_NAME_RE: Final = re.compile(r"[a-z_][a-z0-9_]{0,62}")


class PostgresUnavailable(RuntimeError):
    pass


def server_bin_dir() -> Path:
    """PG_BIN_DIR, else the newest /usr/lib/postgresql/<version>/bin, else postgres on PATH."""
    configured = os.environ.get("PG_BIN_DIR")
    candidates = [Path(configured)] if configured else []
    versions = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda path: int(path.parent.name) if path.parent.name.isdigit() else 0,
        reverse=True,
    )
    candidates += versions
    on_path = shutil.which("postgres")
    if on_path:
        candidates.append(Path(on_path).resolve().parent)
    for candidate in candidates:
        if all((candidate / tool).is_file() for tool in ("initdb", "postgres", "pg_isready")):
            return candidate
    raise PostgresUnavailable(
        "PostgreSQL server binaries (initdb, postgres) not found: install Debian's "
        "'postgresql' package (scripts/bootstrap.sh does as root) or set PG_BIN_DIR"
    )


class PostgresServer:
    def __init__(self) -> None:
        self.bin_dir = server_bin_dir()
        self.port = 0
        self.root: Path | None = None
        self.proc: subprocess.Popen[bytes] | None = None
        self._run_as: dict[str, Any] = {}

    @property
    def host(self) -> str:
        return "127.0.0.1"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{SUPERUSER}@{self.host}:{self.port}/{database}"

    @property
    def log_path(self) -> Path:
        assert self.root is not None
        return self.root / "postgres.log"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def start(self) -> PostgresServer:
        # Not under pytest's tmp dir: its parents are private to root, and the server
        # runs as the postgres user.
        self.root = Path(tempfile.mkdtemp(prefix="iotistic-pg-"))
        data, sockets = self.root / "data", self.root / "sockets"
        sockets.mkdir()
        if os.geteuid() == 0:
            account = pwd.getpwnam(SUPERUSER)
            for path in (self.root, sockets):
                os.chown(path, account.pw_uid, account.pw_gid)
            self._run_as = {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}
        self._run(
            "initdb", "-D", str(data), "-U", SUPERUSER, "--auth=trust", "--encoding=UTF8",
            "--no-sync", "--no-instructions",
        )  # fmt: skip
        self.port = free_port()
        self._launch()
        return self

    def _launch(self) -> None:
        assert self.root is not None
        data, sockets = self.root / "data", self.root / "sockets"
        command = [str(self.bin_dir / "postgres"), "-D", str(data), "-h", self.host]
        command += ["-p", str(self.port), "-k", str(sockets)]
        for setting in SERVER_SETTINGS:
            command += ["-c", setting]
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                # Same process group as the tests: Ctrl-C stops the server too.
                cwd=self.root,
                **self._run_as,
            )
        wait_for(self._ready, START_TIMEOUT_S, interval=0.1, message="PostgreSQL did not start")

    def _ready(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise PostgresUnavailable(f"postgres exited with {self.proc.returncode}:\n{self.log()}")
        probe = [str(self.bin_dir / "pg_isready"), "-h", self.host, "-p", str(self.port), "-q"]
        return subprocess.run(probe, check=False, timeout=10).returncode == 0

    def _run(self, tool: str, *args: str) -> str:
        assert self.root is not None
        result = subprocess.run(
            [str(self.bin_dir / tool), *args],
            capture_output=True,
            text=True,
            cwd=self.root,
            check=False,
            timeout=120,
            **self._run_as,
        )
        if result.returncode != 0:
            raise PostgresUnavailable(f"{tool} failed ({result.returncode}): {result.stderr}")
        return str(result.stdout)

    def sql(self, statement: str, database: str = "postgres") -> str:
        """Run one statement through psql (as the superuser, over TCP)."""
        return self._run(
            "psql", "-h", self.host, "-p", str(self.port), "-U", SUPERUSER, "-d", database,
            "-v", "ON_ERROR_STOP=1", "-X", "-q", "-t", "-A", "-c", statement,
        )  # fmt: skip

    def create_database(self, name: str) -> str:
        """A new empty database; returns its postgresql:// URL."""
        if _NAME_RE.fullmatch(name) is None:
            raise ValueError(f"database name {name!r}: use lowercase letters, digits and _")
        self.sql(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def dump(self, database: str, name: str) -> Path:
        """The backup docs/cloud.md describes: ``pg_dump --format=custom``, into a file of
        the server's directory (the tools run as the postgres user)."""
        assert self.root is not None
        path = self.root / name
        self._run("pg_dump", "--format=custom", f"--file={path}", f"--dbname={self.url(database)}")
        return path

    def restore(self, dump: Path, database: str) -> None:
        """The documented restore: ``pg_restore --no-owner`` into an empty database."""
        self._run("pg_restore", "--no-owner", f"--dbname={self.url(database)}", str(dump))

    def drop_database(self, name: str) -> None:
        if _NAME_RE.fullmatch(name) is None:
            raise ValueError(f"database name {name!r}: use lowercase letters, digits and _")
        self.sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def pause(self) -> None:
        """Stop the server as an outage would (clients disconnected), keeping its data."""
        if self.proc is not None and self.proc.poll() is None:
            # SIGINT is PostgreSQL's "fast" shutdown: disconnect clients, stop cleanly.
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

    def resume(self) -> None:
        """Start a paused server again, on the same port with the same data."""
        assert self.root is not None, "start() the server first"
        self._launch()

    def stop(self) -> None:
        self.pause()
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None

    def __enter__(self) -> PostgresServer:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


@contextlib.contextmanager
def postgres_or_fail(purpose: str) -> Iterator[PostgresServer]:
    """A running server for a fixture; its absence fails the tests (they never skip)."""
    try:
        server = PostgresServer().start()
    except PostgresUnavailable as exc:
        pytest.fail(f"PostgreSQL is required for {purpose}: {exc}")
    try:
        yield server
    finally:
        server.stop()

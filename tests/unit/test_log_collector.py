"""ContainerLogCollector against a fake engine (pure logic): which containers it follows,
from where it resumes, and that a stopped container is read once."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from iotistic_agent.engine.protocol import ContainerLogLine, EngineUnavailable
from iotistic_agent.logs import collector as collector_module
from iotistic_agent.logs.collector import ContainerLogCollector
from iotistic_agent.logs.outbox import Cursor
from iotistic_agent.orchestrator.model import ContainerInfo, EngineSnapshot

from tests.integration.waiting import wait_for_async


def stamp(second: int) -> str:
    return f"2026-11-25T10:00:{second:02d}.000000000Z"


def container(
    cid: str, status: str = "running", started_at: float = 1.0, created_at: float = 100.0
) -> ContainerInfo:
    return ContainerInfo(
        id=cid,
        name=f"web_{cid}",
        app_id=1001,
        service_id=1,
        service_name="web",
        image="img",
        config_hash="h",
        status=status,  # type: ignore[arg-type]
        started_at=started_at,
        created_at=created_at,
    )


class FakeEngine:
    def __init__(self, logs: dict[str, list[ContainerLogLine]]) -> None:
        self.logs = logs
        self.calls: list[tuple[str, float | None]] = []
        self.tails: list[int | None] = []
        self.fail: Exception | None = None

    async def container_logs(
        self, container_id: str, *, tail: int | None, follow: bool, since: float | None = None
    ) -> AsyncIterator[ContainerLogLine]:
        assert follow
        self.calls.append((container_id, since))
        self.tails.append(tail)
        if self.fail is not None:
            raise self.fail
        lines = self.logs.get(container_id, [])
        for line in lines if tail is None else lines[-tail:]:
            yield line


class Harness:
    def __init__(
        self, engine: FakeEngine, snapshot: EngineSnapshot, backlog_before: float = 0.0
    ) -> None:
        self.snapshot = snapshot
        self.cursors: dict[str, Cursor] = {}
        self.stored: list[tuple[dict[str, Any], tuple[str, Cursor]]] = []
        self.kept: list[set[str]] = []
        self.collector = ContainerLogCollector(
            engine,  # type: ignore[arg-type]
            lambda: self.snapshot,
            lambda app_id: "shop" if app_id == 1001 else None,
            self.cursors_of,
            self.put,
            self.kept.append,
            backlog_before=backlog_before,
            backlog_lines=2,
        )

    def cursors_of(self, container_id: str) -> dict[str, Cursor]:
        prefix = f"{container_id}/"
        return {k.removeprefix(prefix): c for k, c in self.cursors.items() if k.startswith(prefix)}

    async def put(self, fields: dict[str, Any], cursor: tuple[str, Cursor]) -> None:
        self.stored.append((fields, cursor))
        self.cursors[cursor[0]] = cursor[1]

    async def scan_and_settle(self) -> None:
        self.collector.scan()
        await wait_for_async(lambda: self.collector.following == 0, 5, 0.001)


async def test_every_line_is_tagged_and_a_stopped_container_is_read_once() -> None:
    lines = [
        ContainerLogLine(stamp(1), "stdout", "hello"),
        ContainerLogLine(stamp(2), "stderr", "oops"),
    ]
    engine = FakeEngine({"c1": lines})
    harness = Harness(engine, EngineSnapshot(containers=(container("c1", "exited"),)))
    await harness.scan_and_settle()
    assert [(f["app"], f["service"], f["stream"], f["message"]) for f, _ in harness.stored] == [
        ("shop", "web", "stdout", "hello"),
        ("shop", "web", "stderr", "oops"),
    ]
    assert harness.cursors == {"c1/stdout": Cursor(stamp(1), 1), "c1/stderr": Cursor(stamp(2), 1)}
    await harness.scan_and_settle()
    assert len(engine.calls) == 1  # read to its end: not read again while it stays stopped
    # It started again: followed from its cursor, nothing stored twice.
    harness.snapshot = EngineSnapshot(containers=(container("c1", "running", started_at=2.0),))
    await harness.scan_and_settle()
    assert engine.calls[-1] == ("c1", 1_795_600_801.0)  # the earlier of the two streams
    assert len(harness.stored) == 2


async def test_a_running_container_is_followed_again_when_its_stream_ends() -> None:
    engine = FakeEngine({"c1": [ContainerLogLine(stamp(1), "stdout", "a")]})
    harness = Harness(engine, EngineSnapshot(containers=(container("c1"),)))
    await harness.scan_and_settle()
    await harness.scan_and_settle()
    assert [since for _, since in engine.calls] == [None, 1_795_600_801.0]
    assert len(harness.stored) == 1


async def test_an_engine_failure_is_logged_once_and_retried(caplog: Any) -> None:
    engine = FakeEngine({})
    engine.fail = EngineUnavailable("docker socket gone")
    harness = Harness(engine, EngineSnapshot(containers=(container("c1"),)))
    for _ in range(3):
        await harness.scan_and_settle()
    assert len(engine.calls) == 3
    warnings = [r for r in caplog.records if "cannot read the output" in r.getMessage()]
    assert len(warnings) == 1


async def test_cursors_of_removed_containers_are_forgotten_now_and_then(monkeypatch: Any) -> None:
    monkeypatch.setattr(collector_module, "FORGET_EVERY", 2)
    engine = FakeEngine({})
    harness = Harness(engine, EngineSnapshot(containers=(container("c2", "exited"),)))
    await harness.scan_and_settle()
    await harness.scan_and_settle()
    await wait_for_async(lambda: harness.kept, 5, 0.01, "cursors were never cleaned up")
    assert harness.kept == [{"c2"}]


async def test_a_container_older_than_log_shipping_sends_only_its_recent_history() -> None:
    lines = [ContainerLogLine(stamp(i), "stdout", f"old {i}") for i in range(5)]
    engine = FakeEngine({"old": lines, "new": lines})
    snapshot = EngineSnapshot(
        containers=(
            container("old", "exited", created_at=50.0),
            container("new", "exited", created_at=150.0),
        )
    )
    harness = Harness(engine, snapshot, backlog_before=100.0)
    await harness.scan_and_settle()
    by_container = {cid: tail for (cid, _), tail in zip(engine.calls, engine.tails, strict=True)}
    assert by_container == {"old": 2, "new": None}
    sent = [f["message"] for f, (key, _) in harness.stored if key.startswith("old/")]
    assert sent == ["old 3", "old 4"]
    # Once it has a cursor, the old container is read from it like any other.
    harness.snapshot = EngineSnapshot(containers=(container("old", "running", started_at=2.0),))
    await harness.scan_and_settle()
    assert engine.tails[-1] is None


async def test_a_container_about_to_be_removed_is_read_to_its_end_first() -> None:
    lines = [ContainerLogLine(stamp(1), "stdout", "last words")]
    engine = FakeEngine({"short": lines})
    # Stopped before any scan: never followed, yet its output must not go with it.
    harness = Harness(engine, EngineSnapshot(containers=(container("short", "exited"),)))
    await harness.collector.finish_reading("short")
    assert [f["message"] for f, _ in harness.stored] == ["last words"]
    # Read to its end: a second call does not read it again.
    await harness.collector.finish_reading("short")
    assert len(engine.calls) == 1
    # Unknown to the snapshot: nothing to do, no error.
    await harness.collector.finish_reading("gone")
    assert len(engine.calls) == 1

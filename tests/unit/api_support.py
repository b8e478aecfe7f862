"""Build the Device API over the in-memory engine for route tests."""

from __future__ import annotations

from pathlib import Path

from iotistic_agent.control import Control
from iotistic_agent.device_api.context import ApiContext
from iotistic_agent.engine.memory import MemoryEngine
from iotistic_agent.orchestrator.reconciler import Reconciler
from iotistic_agent.runtime_config import RuntimeConfig
from iotistic_agent.store.config_store import ConfigStore
from iotistic_agent.store.db import open_database
from iotistic_agent.store.device import DeviceStore
from iotistic_agent.store.failure_store import SqliteFailureStore
from iotistic_agent.store.target_store import TargetStore

KEY = "k" * 43


class FakeClock:
    """A monotonic clock the test moves by hand (`clock.now += 1`)."""

    def __init__(self, now: float = 100.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def api_context(tmp_path: Path, engine: MemoryEngine) -> ApiContext:
    db = tmp_path / "d.sqlite"
    conn = open_database(db)
    devices = DeviceStore(conn)
    devices.ensure_identity()
    targets = TargetStore(conn)
    reconciler = Reconciler(engine, targets, SqliteFailureStore(conn))
    return ApiContext(
        targets=targets,
        reconciler=reconciler,
        engine=engine,
        control=Control(targets, reconciler, engine),
        config=RuntimeConfig({"DATABASE_PATH": str(db)}, ConfigStore(conn)),
        devices=devices,
        database=conn,
    )

"""Factory reset: remove everything the agent created, then its database and identity."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

from .device_api.auth import key_path
from .engine.protocol import Engine
from .logs.shipping import OUTBOX_FILE
from .orchestrator.model import AppSpec, FailureRecord, ServiceKey, ServiceSpec
from .orchestrator.reconciler import Reconciler
from .provisioning.files import device_key_path

log = logging.getLogger("iotistic.agent")


class _Nothing:
    """An empty target with no memory: converging to it removes every container, network
    and volume of this device."""

    known = True  # a stated "no apps", not an unknown target

    def current_target(self) -> Mapping[int, AppSpec]:
        return {}

    def spec_by_hash(self, config_hash: str) -> ServiceSpec | None:
        return None

    def load_failures(self) -> dict[ServiceKey, FailureRecord]:
        return {}

    def put_failure(self, key: ServiceKey, record: FailureRecord) -> None:
        pass

    def delete_failure(self, key: ServiceKey) -> None:
        pass


async def wipe_device(engine: Engine, database_path: Path, data_dir: Path) -> None:
    nothing = _Nothing()
    outcome = await Reconciler(engine, nothing, nothing).reconcile()
    if not outcome.settled:
        raise RuntimeError(f"could not remove the agent's containers: {outcome.error}")
    for path in (
        database_path,
        database_path.with_name(database_path.name + "-wal"),
        database_path.with_name(database_path.name + "-shm"),
        key_path(data_dir),
        device_key_path(data_dir),
        # Log records on their way to the cloud belong to the identity being removed.
        *(data_dir / (OUTBOX_FILE + suffix) for suffix in ("", "-wal", "-shm")),
    ):
        path.unlink(missing_ok=True)
    log.warning(
        "factory reset done: containers, networks, volumes, database, keys, identity and "
        "unsent log records removed"
    )

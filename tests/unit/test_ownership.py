"""Which engine objects an agent takes as its own: the once-only decision about objects
without a device label (migration 007), and no removal before a first target."""

from __future__ import annotations

import uuid
from pathlib import Path

from iotistic_agent.engine.memory import MemoryEngine
from iotistic_agent.orchestrator.reconciler import Reconciler
from iotistic_agent.store.db import open_database
from iotistic_agent.store.device import DeviceStore
from iotistic_agent.store.ownership import adopts_unlabelled
from iotistic_agent.store.target_store import TargetStore
from iotistic_contracts import TargetState
from ownership_support import old_release_database
from planner_support import app, service
from test_reconciler import DictStore, Targets


def test_a_new_database_never_adopts_objects_without_a_device_label(tmp_path: Path) -> None:
    conn = open_database(tmp_path / "device.sqlite")
    DeviceStore(conn).ensure_identity(None)  # the identity comes after the migrations
    assert adopts_unlabelled(conn) is False
    conn.close()
    assert adopts_unlabelled(open_database(tmp_path / "device.sqlite")) is False


def test_the_database_of_an_earlier_release_adopts_them(tmp_path: Path) -> None:
    old_release_database(tmp_path / "device.sqlite", str(uuid.uuid4()))
    assert adopts_unlabelled(open_database(tmp_path / "device.sqlite")) is True


async def test_nothing_is_removed_or_created_while_no_target_was_ever_stored() -> None:
    engine = MemoryEngine(registry={"reg/img:v1"})
    targets = Targets({1: app(1, service(1, "web"))})
    await Reconciler(engine, targets, DictStore()).reconcile()
    before = dict(engine.containers)
    assert len(before) == 1

    unknown = Targets({}, known=False)  # e.g. a second agent on the same engine, just started
    outcome = await Reconciler(engine, unknown, DictStore()).reconcile()
    assert outcome.settled and engine.containers == before

    stated = Targets({}, known=True)
    await Reconciler(engine, stated, DictStore()).reconcile()
    assert engine.containers == {}  # an empty target that was stated removes everything


def test_the_target_is_known_once_one_was_stored_even_an_empty_one(tmp_path: Path) -> None:
    conn = open_database(tmp_path / "device.sqlite")
    store = TargetStore(conn)
    assert not store.known
    # What a cloud without a target for the device serves: version 0, no apps.
    store.save(TargetState(), source="cloud", version=0)
    assert not store.known
    store.save(TargetState(), source="local")
    assert store.known and store.stored.version == 1
    assert TargetStore(conn).known  # after a restart too

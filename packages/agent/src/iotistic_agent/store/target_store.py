"""The persisted target state: committed before it is applied, reloaded after a restart."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass

from iotistic_contracts import TargetState, parse_target_state

from ..orchestrator.model import AppSpec, ServiceSpec
from ..orchestrator.normalise import normalise_target


@dataclass(frozen=True)
class StoredTarget:
    target: TargetState
    state_hash: str
    version: int
    source: str


class TargetStore:
    """Holds the current target in memory, backed by the `target_state` table."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self._stored = self._load()
        self._normalised = normalise_target(self._stored.target)
        # Specs seen in this process, by config hash: lets the logs say why a container
        # is being replaced.
        self._specs_by_hash: dict[str, ServiceSpec] = {}
        self._remember(self._normalised)

    def _remember(self, target: Mapping[int, AppSpec]) -> None:
        for app in target.values():
            for spec in app.services:
                self._specs_by_hash[spec.config_hash] = spec

    def spec_by_hash(self, config_hash: str) -> ServiceSpec | None:
        return self._specs_by_hash.get(config_hash)

    def _load(self) -> StoredTarget:
        row = self._conn.execute(
            "SELECT apps, config, state_hash, version, source FROM target_state WHERE id = 1"
        ).fetchone()
        if row is None:
            empty = TargetState()
            return StoredTarget(empty, empty.state_hash(), 0, "none")
        target = parse_target_state(
            {"apps": json.loads(row["apps"]), "config": json.loads(row["config"])}
        )
        return StoredTarget(target, row["state_hash"], row["version"], row["source"])

    @property
    def stored(self) -> StoredTarget:
        return self._stored

    def current_target(self) -> Mapping[int, AppSpec]:
        return self._normalised

    def save(self, target: TargetState, source: str, version: int | None = None) -> bool:
        """Persist a new target (one transaction). Returns False when nothing changed."""
        state_hash = target.state_hash()
        if state_hash == self._stored.state_hash and version in (None, self._stored.version):
            return False
        normalised = normalise_target(target)  # fail before writing if it cannot be applied
        new_version = version if version is not None else self._stored.version + 1
        dumped = json.loads(target.canonical_json())
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            self._conn.execute(
                "INSERT INTO target_state (id, apps, config, state_hash, version, source) "
                "VALUES (1, ?, ?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET apps = excluded.apps, "
                "config = excluded.config, state_hash = excluded.state_hash, "
                "version = excluded.version, source = excluded.source, "
                "updatedAt = CURRENT_TIMESTAMP",
                (
                    json.dumps(dumped["apps"]),
                    json.dumps(dumped["config"]),
                    state_hash,
                    new_version,
                    source,
                ),
            )
            self._conn.execute("COMMIT")
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._stored = StoredTarget(target, state_hash, new_version, source)
        self._normalised = normalised
        self._remember(normalised)
        return True

"""The persisted target state: committed before it is applied, reloaded after a restart.

Every target, from the Device API or the cloud, enters here: the device policy is checked
first (policy/check.py), and a refused target changes nothing.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

from iotistic_contracts import TargetState, parse_target_state

from ..orchestrator.model import AppSpec, ServiceKey, ServiceSpec
from ..orchestrator.normalise import normalise_target
from ..orchestrator.status import iso
from ..policy import DevicePolicy, Refusal, TargetRefused, check_target, host_paths
from .db import transaction
from .errors import storage_errors

# The stored target and the policy: what the reconciler is asked to converge to.
log = logging.getLogger("iotistic.reconciler.policy")


@dataclass(frozen=True)
class StoredTarget:
    target: TargetState
    state_hash: str
    version: int
    source: str


@dataclass(frozen=True)
class RefusedTarget:
    """The last target the device policy refused, shown in the device's status and report.
    `applied`: the stored target itself (accepted before the policy was narrowed), which stays
    applied until a new one is accepted."""

    version: int | None
    source: str
    state_hash: str
    refusals: tuple[Refusal, ...]
    at: float  # UNIX time of the first refusal of this target
    applied: bool = False

    def as_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "source": self.source,
            "applied": self.applied,
            "at": iso(self.at),
            "message": str(TargetRefused(list(self.refusals))),
            "refusals": [r.as_json() for r in self.refusals],
        }


class TargetStore:
    """Holds the current target in memory, backed by the `target_state` table."""

    def __init__(self, conn: sqlite3.Connection, policy: DevicePolicy | None = None) -> None:
        self._conn = conn
        self._policy = policy or DevicePolicy()
        self._stored = self._load()
        self.refused: RefusedTarget | None = None
        self._check_stored()
        self._declared = normalise_target(self._stored.target)
        # This store is the only writer of the overrides: read them once, keep them here.
        rows = conn.execute("SELECT app_id, service_name, state FROM service_override")
        self._overrides = {(r["app_id"], r["service_name"]): r["state"] for r in rows}
        self._normalised = self._apply_overrides(self._declared)
        # Specs seen in this process, by config hash: lets the logs say why a container
        # is being replaced.
        self._specs_by_hash: dict[str, ServiceSpec] = {}
        self._remember(self._declared)

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

    def _check_stored(self) -> None:
        refusals = check_target(self._stored.target, self._policy, host_paths(self._stored.target))
        if refusals:
            stored = self._stored
            self.refused = RefusedTarget(
                stored.version,
                stored.source,
                stored.state_hash,
                tuple(refusals),
                time.time(),
                applied=True,
            )
            log.error(
                "the stored target (version %d) is not allowed by the device policy; it stays "
                "applied until a new target is accepted: %s",
                stored.version,
                TargetRefused(refusals),
            )

    @property
    def stored(self) -> StoredTarget:
        return self._stored

    @property
    def known(self) -> bool:
        """False until a first target is stored (locally or from the cloud): version 0 means
        "unknown", not "no apps", and the agent then removes nothing."""
        return self._stored.source != "none"

    def current_target(self) -> Mapping[int, AppSpec]:
        """The target to converge to: the declared one with local overrides applied."""
        return self._normalised

    def declared_target(self) -> Mapping[int, AppSpec]:
        return self._declared

    # --- local overrides (iotctl apps/services stop) -----------------------------------

    def overrides(self) -> dict[ServiceKey, str]:
        return dict(self._overrides)

    def set_stopped(self, keys: list[ServiceKey]) -> None:
        """Keep these services stopped until started again or their target changes."""
        rows = []
        for app_id, name in keys:
            spec = self._declared[app_id].service(name) if app_id in self._declared else None
            if spec is not None:
                rows.append((app_id, name, _override_token(spec)))
        with self._transaction():
            self._conn.executemany(
                "INSERT OR REPLACE INTO service_override (app_id, service_name, state, "
                "config_hash) VALUES (?, ?, 'stopped', ?)",
                rows,
            )
        self._overrides.update({(app_id, name): "stopped" for app_id, name, _ in rows})
        self._normalised = self._apply_overrides(self._declared)

    def clear_overrides(self, keys: list[ServiceKey]) -> None:
        with self._transaction():
            self._conn.executemany(
                "DELETE FROM service_override WHERE app_id = ? AND service_name = ?", keys
            )
        for key in keys:
            self._overrides.pop(key, None)
        self._normalised = self._apply_overrides(self._declared)

    def _drop_stale_overrides(self) -> None:
        """A new target for a service ends its override (the operator's intent was about
        the old one); overrides of services that left the target go too."""
        rows = self._conn.execute("SELECT app_id, service_name, config_hash FROM service_override")
        stale = []
        for row in rows.fetchall():
            app = self._declared.get(row["app_id"])
            spec = app.service(row["service_name"]) if app else None
            if spec is None or _override_token(spec) != row["config_hash"]:
                stale.append((row["app_id"], row["service_name"]))
        if stale:
            self.clear_overrides(stale)

    def _apply_overrides(self, declared: Mapping[int, AppSpec]) -> dict[int, AppSpec]:
        stopped = {key for key, state in self._overrides.items() if state == "stopped"}
        if not stopped:
            return dict(declared)
        result = {}
        for app_id, app in declared.items():
            services = tuple(
                replace(s, state="stopped") if s.key in stopped else s for s in app.services
            )
            result[app_id] = replace(app, services=services)
        return result

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        # A full disk or a read-only file system: StorageError, and nothing was stored.
        with storage_errors(), transaction(self._conn):
            yield

    def save(self, target: TargetState, source: str, version: int | None = None) -> bool:
        """Persist a new target (one transaction). Returns False when nothing changed."""
        state_hash = target.state_hash()
        same_version = version in (None, self._stored.version)
        unchanged = state_hash == self._stored.state_hash and same_version
        # A first target is stored even when it is "no apps", unless it is the cloud's
        # version 0: a device the cloud has no target for yet (see `known`).
        if unchanged and (self.known or version == 0):
            return False
        refusals = check_target(target, self._policy, host_paths(target))
        if refusals:
            # The cloud sends a refused target again at every poll: the first refusal stays.
            if self.refused is None or self.refused.state_hash != state_hash:
                refused = (version, source, state_hash, tuple(refusals), time.time())
                self.refused = RefusedTarget(*refused)
            raise TargetRefused(refusals)
        normalised = normalise_target(target)  # fail before writing if it cannot be applied
        new_version = version if version is not None else self._stored.version + 1
        dumped = json.loads(target.canonical_json())
        with self._transaction():
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
        self._stored = StoredTarget(target, state_hash, new_version, source)
        self.refused = None  # what runs now was accepted
        self._declared = normalised
        self._drop_stale_overrides()
        self._normalised = self._apply_overrides(normalised)
        self._remember(normalised)
        return True


def _override_token(spec: ServiceSpec) -> str:
    """What the override was about: any change of the service's target (config or state)
    ends it."""
    return f"{spec.config_hash}:{spec.state}"

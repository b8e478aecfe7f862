"""What route handlers may use, handed over once by the composition root."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from aiohttp import web

from ..anomaly.pipeline import AnomalyPipeline
from ..control import Control
from ..engine.protocol import Engine
from ..logs.ring import LogRing
from ..mqtt.link import MqttLink
from ..orchestrator.reconciler import Reconciler
from ..provisioning.service import Provisioner
from ..runtime_config import RuntimeConfig
from ..simulation.runner import SimulationRunner
from ..store.device import CloudCredentials, DeviceStore
from ..store.target_store import TargetStore
from ..while_provisioned import WhileProvisioned

if TYPE_CHECKING:  # run only while provisioned: imported then
    from ..cloud.sync import CloudSync
    from ..logs.shipping import LogShippingRun


@dataclass(frozen=True)
class ApiContext:
    targets: TargetStore
    reconciler: Reconciler
    engine: Engine
    control: Control
    config: RuntimeConfig
    devices: DeviceStore
    database: sqlite3.Connection
    log_ring: LogRing | None = None
    # Ask the composition root to shut down and start again (restart), or to wipe first.
    request_restart: Callable[[], None] | None = None
    request_factory_reset: Callable[[], None] | None = None
    provisioner: Provisioner | None = None
    cloud: WhileProvisioned[CloudCredentials, CloudSync] | None = None
    mqtt: MqttLink | None = None
    log_shipping: WhileProvisioned[CloudCredentials, LogShippingRun] | None = None
    simulation: SimulationRunner | None = None
    anomalies: AnomalyPipeline | None = None


CONTEXT_KEY = web.AppKey("iotistic_context", ApiContext)


def api_context(request: web.Request) -> ApiContext:
    return request.app[CONTEXT_KEY]

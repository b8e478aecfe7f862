"""What route handlers may use, handed over once by the composition root."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from ..logs.ring import LogRing
from ..orchestrator.engine import Engine
from ..orchestrator.reconciler import Reconciler
from ..store.target_store import TargetStore


@dataclass(frozen=True)
class ApiContext:
    targets: TargetStore
    reconciler: Reconciler
    engine: Engine
    device_uuid: str
    log_ring: LogRing | None = None
    data_dir: Path | None = None
    # Asks the composition root to shut down and start the agent again (restart, reset).
    request_restart: Callable[[], None] | None = None


CONTEXT_KEY = web.AppKey("iotistic_context", ApiContext)


def api_context(request: web.Request) -> ApiContext:
    return request.app[CONTEXT_KEY]

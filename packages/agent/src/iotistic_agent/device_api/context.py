"""What route handlers may use, handed over once by the composition root."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from ..orchestrator.reconciler import Reconciler
from ..store.target_store import TargetStore


@dataclass(frozen=True)
class ApiContext:
    targets: TargetStore
    reconciler: Reconciler
    device_uuid: str


CONTEXT_KEY = web.AppKey("iotistic_context", ApiContext)


def api_context(request: web.Request) -> ApiContext:
    return request.app[CONTEXT_KEY]

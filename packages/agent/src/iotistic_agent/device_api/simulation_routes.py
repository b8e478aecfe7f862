"""Simulation scenarios: list them, start and stop one (`iotctl simulation ...`)."""

from __future__ import annotations

from aiohttp import web

from ..simulation.runner import SimulationRunner, UnknownScenario
from .context import api_context
from .errors import ApiError

routes = web.RouteTableDef()


def _runner(request: web.Request) -> SimulationRunner:
    runner = api_context(request).simulation
    if runner is None:
        raise ApiError(503, "not_available", "simulation is not available in this mode")
    return runner


@routes.get("/v1/simulation")
async def scenarios(request: web.Request) -> web.Response:
    return web.json_response({"scenarios": _runner(request).status()})


async def _switch(request: web.Request, start: bool) -> web.Response:
    runner = _runner(request)
    name = request.match_info["scenario"]
    try:
        changed = runner.start(name) if start else await runner.stop(name)
    except UnknownScenario:
        known = "sensor_data, anomaly_injection, memory_leak"
        raise ApiError(404, "not_found", f"no scenario {name!r} (known: {known})") from None
    return web.json_response({"scenario": name, "running": start, "changed": changed})


@routes.post("/v1/simulation/{scenario}/start")
async def start(request: web.Request) -> web.Response:
    return await _switch(request, start=True)


@routes.post("/v1/simulation/{scenario}/stop")
async def stop(request: web.Request) -> web.Response:
    return await _switch(request, start=False)

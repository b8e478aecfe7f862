"""Listen on the gateway address of the app networks whose services asked for the Device API
(app_access.py), and only there: each address is one more aiohttp site of the same runner,
started when such a network appears and stopped when it goes.

The networks come and go with the target, so the listeners follow them: every
`interval_s`, and at once when woken (after a target change).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping

from aiohttp import web

from ..orchestrator.model import ServiceSpec
from .app_access import listen_addresses

log = logging.getLogger("iotistic.device_api")

# The main listener already covers every address: nothing to add (and binding one of them
# as well would fail).
WILDCARDS = frozenset({"", "0.0.0.0", "::"})


class AppNetworkListeners:
    def __init__(
        self,
        runner: web.AppRunner,
        main_host: str,
        port: int,
        gateways: Callable[[], Awaitable[Mapping[str, str]]],
        services: Callable[[], Iterable[ServiceSpec]],
        interval_s: float = 2.0,
    ) -> None:
        self._runner = runner
        self._main_host = main_host
        self._port = port
        self._gateways = gateways
        self._services = services
        self._interval_s = interval_s
        self._sites: dict[str, web.TCPSite] = {}
        self._wake = asyncio.Event()

    @property
    def addresses(self) -> frozenset[str]:
        return frozenset(self._sites)

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        try:
            while True:
                self._wake.clear()
                try:
                    await self.update()
                except Exception:  # the engine away, a bug: log, keep the others, try again
                    log.exception("updating the Device API's app network listeners failed")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self._interval_s)
        finally:
            await self.close()

    async def update(self) -> None:
        if self._main_host in WILDCARDS:
            return
        wanted = listen_addresses(list(self._services()), await self._gateways())
        wanted -= {self._main_host}
        for address in sorted(set(self._sites) - wanted):
            await self._sites.pop(address).stop()
            log.info("Device API no longer listens on %s:%d", address, self._port)
        for address in sorted(wanted - set(self._sites)):
            site = web.TCPSite(self._runner, address, self._port)
            try:
                await site.start()
            except OSError as exc:
                log.warning("Device API cannot listen on %s:%d yet: %s", address, self._port, exc)
                continue
            self._sites[address] = site
            log.info("Device API listens on %s:%d for the app network there", address, self._port)

    async def close(self) -> None:
        sites, self._sites = self._sites, {}
        for site in sites.values():
            with contextlib.suppress(Exception):
                await site.stop()

"""``iotistic-cloud serve``: the API in one uvicorn process (replicas scale it out)."""

from __future__ import annotations

import logging
import socket
from typing import Final

import uvicorn

from ..api.app import create_app
from ..composition import Cloud
from .runtime import load_settings, run

log = logging.getLogger("iotistic.cloud")
LOG_FORMAT: Final = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class _Server(uvicorn.Server):
    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.should_exit:
            return
        # The real address (also when --port 0 let the kernel choose): tests and scripts read it.
        for server in self.servers:
            for sock in server.sockets:
                host, port = sock.getsockname()[:2]
                shown = f"[{host}]" if ":" in host else host
                log.info("iotistic-cloud listening on http://%s:%d", shown, port)


async def _ready(_cloud: Cloud) -> None:
    return None


def serve(host: str, port: int, log_level: str, access_log: bool) -> None:
    logging.basicConfig(level=log_level.upper(), format=LOG_FORMAT)
    # Alembic announces each of its plugins at info level whenever it loads its scripts.
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
    settings = load_settings()
    # Migrate (and reach the database) first, so a failure is one clear line, not a traceback
    # from the server's start-up.
    run(_ready)
    app = create_app(settings, migrate_on_start=False)
    log.info(
        "database %s, data dir %s",
        "sqlite" if settings.is_sqlite else "postgresql",
        settings.data_dir,
    )
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=None,
        log_level=log_level,
        access_log=access_log,
        server_header=False,
    )
    _Server(config).run()

"""Composition root: the only place that wires the agent's components together."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import gc
import logging
import signal
import sys

from aiohttp import web
from pydantic import ValidationError

from . import __version__
from .device_api.app import create_app
from .device_api.auth import load_or_create_key
from .device_api.context import ApiContext
from .logs.ring import LogRing
from .orchestrator.docker import DockerEngine
from .orchestrator.reconciler import Reconciler
from .settings import AgentSettings
from .store.db import open_database
from .store.device import DeviceStore
from .store.failure_store import SqliteFailureStore
from .store.target_store import TargetStore

log = logging.getLogger("iotistic.agent")

SHUTDOWN_GRACE_S = 4.0


async def run_agent(settings: AgentSettings, log_ring: LogRing) -> None:
    conn = open_database(settings.DATABASE_PATH)
    identity = DeviceStore(conn).ensure_identity(settings.DEVICE_NAME)
    targets = TargetStore(conn)
    engine = DockerEngine(settings.DOCKER_HOST)
    reconciler = Reconciler(
        engine,
        targets,
        SqliteFailureStore(conn),
        interval_s=settings.RECONCILIATION_INTERVAL_MS / 1000,
    )
    app = create_app(
        ApiContext(
            targets=targets,
            reconciler=reconciler,
            engine=engine,
            device_uuid=identity.uuid,
            log_ring=log_ring,
            data_dir=settings.data_dir,
        ),
        api_key=load_or_create_key(settings.data_dir),
    )
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, settings.DEVICE_API_HOST, settings.DEVICE_API_PORT)
    await site.start()
    release_startup_memory()
    log.info(
        "agent %s started: device %s, database %s, Device API on %s:%s, target version %d",
        __version__,
        identity.uuid,
        settings.DATABASE_PATH,
        settings.DEVICE_API_HOST,
        settings.DEVICE_API_PORT,
        targets.stored.version,
    )

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    reconcile_task = asyncio.create_task(reconciler.run(), name="reconciler")
    try:
        await stop.wait()
        log.info("stopping (containers keep running)")
    finally:
        reconcile_task.cancel()
        await asyncio.wait({reconcile_task}, timeout=SHUTDOWN_GRACE_S)
        await runner.cleanup()
        await engine.close()
        conn.close()
        log.info("stopped")


def release_startup_memory() -> None:
    """Imports leave freed heap behind; hand it back to the OS (glibc only, best effort)."""
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def configure_logging(level: str) -> LogRing:
    """Plain text on stderr for people, plus the in-memory ring that `iotctl logs` reads."""
    names = {"debug": logging.DEBUG, "info": logging.INFO, "warn": logging.WARNING}
    logging.basicConfig(
        level=names.get(level, logging.getLevelName(level.upper())),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    ring = LogRing()
    logging.getLogger().addHandler(ring)
    return ring


def main() -> None:
    try:
        settings = AgentSettings.from_env()
    except ValidationError as exc:
        print(f"iotistic-agent: invalid settings: {exc}", file=sys.stderr)
        raise SystemExit(2) from exc
    log_ring = configure_logging(settings.LOG_LEVEL)
    asyncio.run(run_agent(settings, log_ring))


if __name__ == "__main__":
    main()

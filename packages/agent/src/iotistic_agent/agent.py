"""Composition root: the only place that wires the agent's components together."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import gc
import logging
import os
import signal
import sys
from typing import TYPE_CHECKING, Literal

from aiohttp import web
from pydantic import ValidationError

from . import __version__
from .anomaly.pipeline import AnomalyPipeline
from .anomaly.service import AnomalyDetectionService
from .cloud.wiring import cloud_sync_runner, sync_timing
from .control import Control
from .device_api.app import create_app
from .device_api.auth import load_or_create_key
from .device_api.context import ApiContext
from .engine.docker import DockerEngine
from .factory_reset import wipe_device
from .logs.redaction import RedactingFilter, redact_text
from .logs.ring import LogRing
from .logs.setup import LoggingSetup, LogSettings, level_number
from .logs.wiring import log_shipping_service, shipping_settings
from .mqtt.credentials import MqttCredentials
from .mqtt.service import MqttService
from .orchestrator.reconciler import Reconciler
from .provisioning.service import Provisioner, when_provisioned
from .runtime_config import RuntimeConfig
from .settings import AgentSettings, anomaly_config
from .simulation.config import SimulationConfig, SimulationConfigError, simulation_config
from .simulation.wiring import simulation_runner
from .store.anomaly_store import AnomalyStore
from .store.config_store import ConfigStore
from .store.db import open_database
from .store.device import CloudCredentials, DeviceStore
from .store.failure_store import SqliteFailureStore
from .store.target_store import TargetStore

if TYPE_CHECKING:
    from .mqtt.manager import MqttManager

log = logging.getLogger("iotistic.agent")

SHUTDOWN_GRACE_S = 4.0
Outcome = Literal["stop", "restart", "factory-reset"]
# The running agent's logging (configure_logging); None before it is set up (tests).
_logging: LoggingSetup | None = None


async def run_agent(
    env_settings: AgentSettings, log_ring: LogRing, simulation_config: SimulationConfig
) -> Outcome:
    conn = open_database(env_settings.DATABASE_PATH)
    devices = DeviceStore(conn)
    config = RuntimeConfig(os.environ, ConfigStore(conn))
    settings = config.settings
    apply_log_settings(settings)
    identity = devices.ensure_identity(settings.DEVICE_NAME)
    targets = TargetStore(conn)
    engine = DockerEngine(settings.DOCKER_HOST)
    reconciler = Reconciler(
        engine,
        targets,
        SqliteFailureStore(conn),
        interval_s=settings.RECONCILIATION_INTERVAL_MS / 1000,
    )
    # The MQTT update trigger asks cloud sync to poll now; reports use MQTT while it is up.
    anomalies = AnomalyPipeline(
        AnomalyDetectionService(anomaly_config(settings)),
        AnomalyStore(conn),
        settings.data_dir,
        sample_interval_s=settings.ANOMALY_SAMPLE_INTERVAL_MS / 1000,
    )

    def mqtt_manager(credentials: MqttCredentials) -> MqttManager:
        # Imported here: a device that is not provisioned (local mode) never loads MQTT.
        from .mqtt.manager import MqttManager

        return MqttManager(credentials, on_update=cloud.poll_now, on_reading=anomalies.on_reading)

    mqtt = MqttService(mqtt_manager)
    cloud = cloud_sync_runner(
        lambda: config.settings,
        conn,
        targets,
        reconciler,
        engine,
        mqtt,
        extra_fields=lambda: {
            "anomalies": anomalies.service.summary_for_report(10),
            # Reports say so while simulated data is being produced.
            "simulation": simulation.running_scenarios(),
        },
    )
    # The agent's own records (sampled) and every container's output, while provisioned.
    log_shipping = log_shipping_service(
        lambda: config.settings, engine, reconciler, targets, [RedactingFilter()]
    )
    simulation = simulation_runner(simulation_config, mqtt, anomalies.feed_reading)
    anomalies.inject = simulation.inject

    def provisioned(credentials: CloudCredentials) -> None:
        cloud.start(credentials)
        mqtt.start(devices.mqtt_credentials())
        log_shipping.start(credentials)

    def deprovisioned() -> None:
        cloud.stop_soon()
        mqtt.stop_soon()
        log_shipping.stop_soon()

    provisioner = Provisioner(
        devices,
        lambda: config.settings,
        settings.data_dir,
        # Sync and MQTT start right after provisioning (no restart), stop on deprovisioning.
        on_provisioned=provisioned,
        on_deprovisioned=deprovisioned,
    )

    applied = [settings]

    def apply_config(new: AgentSettings) -> None:
        apply_log_settings(new)
        reconciler.set_interval(new.RECONCILIATION_INTERVAL_MS / 1000)
        cloud.set_timing(sync_timing(new))
        log_shipping.apply(shipping_settings(new))
        anomalies.service.reconfigure(anomaly_config(new))
        # Only a change of DEVICE_NAME renames: any other change must keep the cloud's name.
        if new.DEVICE_NAME != applied[0].DEVICE_NAME:
            devices.set_name(new.DEVICE_NAME)
        applied[0] = new
        log.info("configuration applied")

    config.subscribe(apply_config)
    stop = asyncio.Event()
    outcome: list[Outcome] = ["stop"]

    def finish(how: Outcome) -> None:
        outcome[0] = how
        stop.set()

    app = create_app(
        ApiContext(
            targets=targets,
            reconciler=reconciler,
            engine=engine,
            control=Control(targets, reconciler, engine),
            config=config,
            devices=devices,
            database=conn,
            log_ring=log_ring,
            request_restart=lambda: finish("restart"),
            request_factory_reset=lambda: finish("factory-reset"),
            provisioner=provisioner,
            cloud=cloud,
            mqtt=mqtt,
            log_shipping=log_shipping,
            simulation=simulation,
            anomalies=anomalies,
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

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, finish, "stop")
    tasks = {
        asyncio.create_task(provisioner.run(), name="provisioning"),
        asyncio.create_task(
            when_provisioned(provisioner, settings.REQUIRE_PROVISIONING, reconciler.run),
            name="reconciler",
        ),
        asyncio.create_task(anomalies.run(), name="anomaly-detection"),
    }
    credentials = devices.cloud_credentials()
    if credentials is not None:
        provisioned(credentials)
    simulation.start_configured()
    try:
        await stop.wait()
        log.info("stopping for %s", outcome[0])
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.wait(tasks, timeout=SHUTDOWN_GRACE_S)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(cloud.stop(), SHUTDOWN_GRACE_S)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(mqtt.stop(), SHUTDOWN_GRACE_S)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(log_shipping.stop(), SHUTDOWN_GRACE_S)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(simulation.stop_all(), SHUTDOWN_GRACE_S)
        await runner.cleanup()
        if outcome[0] == "factory-reset":
            conn.close()
            await wipe_device(engine, settings.DATABASE_PATH, settings.data_dir)
        await engine.close()
        with contextlib.suppress(Exception):
            conn.close()
        log.info("stopped")
    return outcome[0]


def release_startup_memory() -> None:
    """Imports leave freed heap behind; hand it back to the OS (glibc only, best effort)."""
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def set_log_level(level: str) -> None:
    if _logging is not None:
        _logging.set_level(level)
    else:
        logging.getLogger().setLevel(level_number(level))


def apply_log_settings(settings: LogSettings) -> None:
    """LOG_LEVEL, LOG_FORMAT and the LOG_FILE_* limits, at start-up and on every change."""
    if _logging is not None:
        _logging.apply(settings)
    else:
        set_log_level(settings.LOG_LEVEL)


def configure_logging(settings: AgentSettings) -> LoggingSetup:
    """stderr (text on a terminal, JSON lines otherwise), `<data dir>/logs/agent.log` and the
    in-memory ring that `iotctl logs` reads, all behind the redaction filter (docs/agent.md,
    "Logs"). Other handlers attach later with `.add_handler`."""
    global _logging
    if _logging is not None:
        _logging.close()
    _logging = LoggingSetup(settings, settings.data_dir)
    return _logging


def main() -> None:
    try:
        settings = AgentSettings.from_env()
        simulation = simulation_config(os.environ)
    except ValidationError as exc:
        # Before logging exists (its settings are what failed): a plain line for people.
        print(f"iotistic-agent: invalid settings: {redact_text(str(exc))}", file=sys.stderr)
        raise SystemExit(2) from exc
    except SimulationConfigError as exc:
        print(f"iotistic-agent: invalid settings: {redact_text(str(exc))}", file=sys.stderr)
        raise SystemExit(2) from exc
    logs = configure_logging(settings)
    outcome = asyncio.run(run_agent(settings, logs.ring, simulation))
    logging.shutdown()  # flush the log file before a restart replaces the process
    if outcome != "stop":
        # Same process id, fresh interpreter: supervisors and tests see one long-lived agent.
        os.execv(sys.executable, [sys.executable, "-m", "iotistic_agent", *sys.argv[1:]])


if __name__ == "__main__":
    main()

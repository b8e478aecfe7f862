"""Composition root: the only place that wires the agent's components together."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import functools
import gc
import logging
import os
import signal
import sys
from collections.abc import Mapping
from typing import Any, Literal

from aiohttp import web
from iotistic_device_paths import database_path
from pydantic import ValidationError

from . import __version__
from .anomaly.pipeline import AnomalyPipeline
from .anomaly.service import AnomalyDetectionService
from .cloud.wiring import cloud_sync, sync_timing
from .control import Control
from .device_api.app import create_app
from .device_api.app_access import service_environment
from .device_api.app_listeners import AppNetworkListeners
from .device_api.auth import load_or_create_key
from .device_api.context import ApiContext
from .engine.docker import DockerEngine
from .factory_reset import wipe_device
from .lifecycle import Lifecycle
from .logs.before_remove import ReadBeforeRemove
from .logs.redaction import RedactingFilter, redact_text
from .logs.setup import LoggingSetup, level_number
from .logs.wiring import log_shipping, shipping_settings
from .mqtt.link import MqttLink, mqtt_connection
from .orchestrator.reconciler import Reconciler
from .policy import device_policy
from .provisioning.service import Provisioner, when_provisioned
from .runtime_config import RuntimeConfig
from .settings import AgentSettings, anomaly_config
from .simulation.config import SimulationConfig, SimulationConfigError, simulation_config
from .simulation.injector import AnomalyInjection
from .simulation.wiring import simulation_runner
from .store.anomaly_store import AnomalyStore
from .store.config_store import ConfigStore
from .store.db import open_database
from .store.device import CloudCredentials, DeviceStore
from .store.failure_store import SqliteFailureStore
from .store.ownership import adopts_unlabelled
from .store.target_store import TargetStore

log = logging.getLogger("iotistic.agent")

# The whole shutdown (every component, in reverse start order) fits in this.
SHUTDOWN_GRACE_S = 5.0
# "failed": a component ended on an error; the agent exits 1 for its supervisor to restart it.
Outcome = Literal["stop", "restart", "factory-reset", "failed"]


class StartupError(Exception):
    """The agent cannot start (what was started is stopped again); the message says why."""


class Agent:
    """The agent's components, built in dependency order (each from the ones above it);
    ``run`` starts them and, when asked to stop, stops them in reverse order."""

    def __init__(
        self,
        environ: Mapping[str, str],
        logs: LoggingSetup | None,
        simulation: SimulationConfig,
    ) -> None:
        """``logs``: the process's logging (None in tests: only the level is applied)."""
        self._logs = logs
        self._outcome: Outcome = "stop"
        self._stopping = asyncio.Event()

        # Storage and settings: the environment, overridden by `iotctl config set`.
        # Where AgentSettings finds it too (iotistic_device_paths): needed before the settings,
        # which `iotctl config set` overrides are stored in this very database.
        self.database = open_database(database_path(environ))
        self.devices = DeviceStore(self.database)
        self.config = RuntimeConfig(environ, ConfigStore(self.database))
        settings = self._applied = self.config.settings
        self._apply_log_settings(settings)
        self.identity = self.devices.ensure_identity(settings.DEVICE_NAME)
        # The Device API key; the apps' scoped keys derive from it (device_api/app_access.py).
        self.api_key = load_or_create_key(settings.data_dir)
        # The device policy: from the environment alone, never from `iotctl config set`.
        self.targets = TargetStore(self.database, device_policy(AgentSettings.from_env(environ)))

        # Containers: the engine and the loop that keeps it equal to the target.
        # A service that asks for the Device API gets its address and key when created.
        self.engine = DockerEngine(
            settings.DOCKER_HOST,
            device_uuid=self.identity.uuid,
            adopt_unlabelled=adopts_unlabelled(self.database),
            environment=functools.partial(
                service_environment, device_key=self.api_key, port=settings.DEVICE_API_PORT
            ),
        )
        self.before_remove = ReadBeforeRemove()
        self.reconciler = Reconciler(
            self.engine,
            self.targets,
            SqliteFailureStore(self.database),
            interval_s=settings.RECONCILIATION_INTERVAL_MS / 1000,
            before_remove=self.before_remove,
        )
        self.control = Control(self.targets, self.reconciler, self.engine, self.before_remove)

        # Anomaly detection, fed by system metrics, sensor readings and the simulation.
        self.injection = AnomalyInjection(simulation.scenarios.anomaly_injection)
        self.anomalies = AnomalyPipeline(
            AnomalyDetectionService(anomaly_config(settings)),
            AnomalyStore(self.database),
            settings.data_dir,
            inject=self.injection.inject,
            sample_interval_s=settings.ANOMALY_SAMPLE_INTERVAL_MS / 1000,
        )

        # While provisioned: MQTT, cloud sync and log shipping (WhileProvisioned each).
        # The MQTT update trigger asks cloud sync to poll now; reports use MQTT while it is up.
        self.poll_requests = asyncio.Event()
        self.mqtt = mqtt_connection(self.poll_requests.set, self.anomalies.on_reading)
        self.mqtt_link = MqttLink(self.mqtt)
        self.simulation = simulation_runner(
            simulation, self.mqtt_link, self.anomalies.feed_reading, self.injection
        )
        self.cloud = cloud_sync(
            self._settings,
            self.database,
            self.targets,
            self.reconciler,
            self.engine,
            self.mqtt_link,
            extra_fields=self._report_extras,
            poll_requests=self.poll_requests,
        )
        self.log_shipping = log_shipping(
            self._settings,
            self.engine,
            self.reconciler,
            self.targets,
            self.before_remove,
            [RedactingFilter()],
        )
        self.provisioner = Provisioner(
            self.devices,
            self._settings,
            settings.data_dir,
            # Started right after provisioning (no restart), stopped on deprovisioning.
            on_provisioned=self._provisioned,
            on_deprovisioned=self._deprovisioned,
        )

        # The Device API (iotctl), over all of the above.
        self.api = create_app(
            ApiContext(
                targets=self.targets,
                reconciler=self.reconciler,
                engine=self.engine,
                control=self.control,
                config=self.config,
                devices=self.devices,
                database=self.database,
                log_ring=None if logs is None else logs.ring,
                request_restart=functools.partial(self.stop, "restart"),
                request_factory_reset=functools.partial(self.stop, "factory-reset"),
                provisioner=self.provisioner,
                cloud=self.cloud,
                mqtt=self.mqtt_link,
                log_shipping=self.log_shipping,
                simulation=self.simulation,
                anomalies=self.anomalies,
            ),
            api_key=self.api_key,
        )
        self.config.subscribe(self._apply_config)

    def _settings(self) -> AgentSettings:
        """The settings in force now (`iotctl config set` changes them at runtime)."""
        return self.config.settings

    async def run(self) -> Outcome:
        settings = self.config.settings
        async with Lifecycle(SHUTDOWN_GRACE_S, self._task_failed) as life:
            life.on_exit(self.database.close)
            life.on_stop("Docker engine client", self.engine.close, bounded=False)
            life.on_stop("factory reset", self._wipe_if_asked, bounded=False)
            # Listening first: a second agent given the same port stops here, before it
            # touches the engine (and this one's stops last but for its resources).
            await self._serve_api(life, settings)
            life.task(
                "reconciler",
                when_provisioned(
                    self.provisioner, settings.REQUIRE_PROVISIONING, self.reconciler.run
                ),
            )
            life.task("provisioning", self.provisioner.run())
            life.task("anomaly detection", self.anomalies.run())
            for component in (self.cloud, self.mqtt, self.log_shipping):
                life.on_stop(component.name, component.stop)
            credentials = self.devices.cloud_credentials()
            if credentials is not None:
                self._provisioned(credentials)
            life.on_stop("simulation", self.simulation.stop_all)
            self.simulation.start_configured()
            self._handle_signals(life)
            release_startup_memory()
            log.info(
                "agent %s started: device %s, database %s, Device API on %s:%s, target version %d",
                __version__,
                self.identity.uuid,
                settings.DATABASE_PATH,
                settings.DEVICE_API_HOST,
                settings.DEVICE_API_PORT,
                self.targets.stored.version,
            )
            await self._stopping.wait()
            log.info("stopping for %s", self._outcome)
        log.info("stopped")
        return self._outcome

    def stop(self, outcome: Outcome = "stop") -> None:
        """Leave ``run`` (signals, `iotctl restart`, factory reset); the first reason wins."""
        if not self._stopping.is_set():
            self._outcome = outcome
            self._stopping.set()

    async def _serve_api(self, life: Lifecycle, settings: AgentSettings) -> None:
        runner = web.AppRunner(self.api, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        life.on_stop("Device API", runner.cleanup)
        site = web.TCPSite(runner, settings.DEVICE_API_HOST, settings.DEVICE_API_PORT)
        try:
            await site.start()
        except OSError as exc:
            where = f"{settings.DEVICE_API_HOST}:{settings.DEVICE_API_PORT}"
            reason = exc.strerror or str(exc)
            raise StartupError(f"the Device API cannot listen on {where}: {reason}") from None
        # And on the gateway of the app networks whose services asked for it.
        listeners = AppNetworkListeners(
            runner,
            settings.DEVICE_API_HOST,
            settings.DEVICE_API_PORT,
            self.engine.network_gateways,
            lambda: [s for app in self.targets.current_target().values() for s in app.services],
        )
        life.task("Device API on app networks", listeners.run())

    def _handle_signals(self, life: Lifecycle) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stop, "stop")
            life.on_exit(functools.partial(loop.remove_signal_handler, sig))

    def _task_failed(self, name: str) -> None:
        self.stop("failed")

    def _provisioned(self, credentials: CloudCredentials) -> None:
        self.cloud.start(credentials)
        mqtt = self.devices.mqtt_credentials()
        if mqtt is None:
            log.info("MQTT not configured: the registration names no broker")
        else:
            self.mqtt.start(mqtt)
        self.log_shipping.start(credentials)

    def _deprovisioned(self) -> None:
        self.cloud.stop_soon()
        self.mqtt.stop_soon()
        self.log_shipping.stop_soon()

    def _report_extras(self) -> dict[str, Any]:
        return {
            "anomalies": self.anomalies.service.summary_for_report(10),
            # Reports say so while simulated data is being produced.
            "simulation": self.simulation.running_scenarios(),
            # The last target the device policy refused ({} when none): the cloud sees why.
            "targetRefusal": refused.as_json() if (refused := self.targets.refused) else {},
        }

    def _apply_config(self, new: AgentSettings) -> None:
        self._apply_log_settings(new)
        self.reconciler.set_interval(new.RECONCILIATION_INTERVAL_MS / 1000)
        if (sync := self.cloud.current) is not None:
            sync.set_timing(sync_timing(new))
        if (shipping := self.log_shipping.current) is not None:
            shipping.apply(shipping_settings(new))
        self.anomalies.service.reconfigure(anomaly_config(new))
        # Only a change of DEVICE_NAME renames: any other change must keep the cloud's name.
        if new.DEVICE_NAME != self._applied.DEVICE_NAME:
            self.devices.set_name(new.DEVICE_NAME)
        self._applied = new
        log.info("configuration applied")

    def _apply_log_settings(self, settings: AgentSettings) -> None:
        """LOG_LEVEL, LOG_FORMAT and the LOG_FILE_* limits, at start-up and on every change."""
        if self._logs is not None:
            self._logs.apply(settings)
        else:
            logging.getLogger().setLevel(level_number(settings.LOG_LEVEL))

    async def _wipe_if_asked(self) -> None:
        if self._outcome != "factory-reset":
            return
        settings = self.config.settings
        self.database.close()
        await wipe_device(self.engine, settings.DATABASE_PATH, settings.data_dir)


async def run_agent(logs: LoggingSetup | None, simulation: SimulationConfig) -> Outcome:
    # Built inside the running loop: its clients (aiohttp) belong to that loop.
    agent = Agent(os.environ, logs, simulation)
    return await agent.run()


def release_startup_memory() -> None:
    """Imports leave freed heap behind; hand it back to the OS (glibc only, best effort)."""
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def main() -> None:
    """Run the agent (``command_line.main`` has checked the arguments)."""
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
    # stderr, `<data dir>/logs/agent.log` and the ring `iotctl logs` reads, behind the
    # redaction filter (docs/agent.md, "Logs"); log shipping attaches its handler later.
    logs = LoggingSetup(settings, settings.data_dir)
    try:
        outcome = asyncio.run(run_agent(logs, simulation))
    except StartupError as exc:
        log.error("cannot start: %s", exc)
        logging.shutdown()
        raise SystemExit(1) from None
    logging.shutdown()  # flush the log file before a restart replaces the process
    if outcome == "failed":
        raise SystemExit(1)
    if outcome != "stop":
        # Same process id, fresh interpreter: supervisors and tests see one long-lived agent.
        os.execv(sys.executable, [sys.executable, "-m", "iotistic_agent", *sys.argv[1:]])


"""The composition root: the one place that wires settings, database and services together."""

from __future__ import annotations

from dataclasses import dataclass

from .clock import Clock, utc_now
from .db.engine import Database
from .mqtt.accounts import BrokerAccounts, DeviceAccounts, NoBroker
from .mqtt.link import MqttLink
from .mqtt.reports import StateReportHandler
from .services.anomalies import AnomalyService
from .services.devices import DeviceService
from .services.exchanges import ExchangeService
from .services.keys import KeyService
from .services.logs import LogService
from .services.rate_limit import RateLimiter
from .services.registration import RegistrationService
from .services.reports import ReportService
from .services.targets import TargetService
from .settings import Settings


@dataclass(frozen=True)
class Cloud:
    settings: Settings
    database: Database
    clock: Clock
    keys: KeyService
    exchanges: ExchangeService
    registration: RegistrationService
    devices: DeviceService
    targets: TargetService
    reports: ReportService
    anomalies: AnomalyService
    logs: LogService
    # None when broker management is off (no MQTT_PASSWORD).
    mqtt: MqttLink | None
    # Per device API key on the device routes; per provisioning key on the key exchange.
    device_limits: RateLimiter
    provisioning_limits: RateLimiter


def build_cloud(
    settings: Settings, database: Database | None = None, clock: Clock = utc_now
) -> Cloud:
    if database is None:
        database = Database(
            settings.database_url,
            pool_size=settings.database_pool_size,
            wait_timeout_s=settings.database_wait_timeout_s,
        )
    reports = ReportService(database)
    mqtt: MqttLink | None = None
    accounts: DeviceAccounts = NoBroker()
    if settings.mqtt_admin is not None:
        mqtt = MqttLink(settings.mqtt_admin, on_state=StateReportHandler(reports, clock))
        accounts = BrokerAccounts(mqtt)
    return Cloud(
        settings=settings,
        database=database,
        clock=clock,
        keys=KeyService(database),
        exchanges=ExchangeService(database, settings.key_exchange_ttl_s),
        registration=RegistrationService(database, settings.mqtt, accounts),
        devices=DeviceService(database, accounts),
        targets=TargetService(database, accounts),
        reports=reports,
        anomalies=AnomalyService(database),
        logs=LogService(
            database,
            clock,
            settings.log_retention_days,
            settings.log_max_records_per_device,
        ),
        mqtt=mqtt,
        device_limits=RateLimiter(settings.device_rate_limit_per_min, "device"),
        provisioning_limits=RateLimiter(
            settings.provisioning_rate_limit_per_min, "provisioning key"
        ),
    )

"""The composition root: the one place that wires settings, database and services together."""

from __future__ import annotations

from dataclasses import dataclass

from .clock import Clock, utc_now
from .db.engine import Database
from .services.devices import DeviceService
from .services.exchanges import ExchangeService
from .services.keys import KeyService
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


def build_cloud(
    settings: Settings, database: Database | None = None, clock: Clock = utc_now
) -> Cloud:
    database = database if database is not None else Database(settings.database_url)
    return Cloud(
        settings=settings,
        database=database,
        clock=clock,
        keys=KeyService(database),
        exchanges=ExchangeService(database, settings.key_exchange_ttl_s),
        registration=RegistrationService(database, settings.mqtt),
        devices=DeviceService(database),
        targets=TargetService(database),
        reports=ReportService(database),
    )

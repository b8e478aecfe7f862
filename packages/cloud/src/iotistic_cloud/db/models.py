"""The tables. Secrets are stored only as hashes; see tokens.py for the forms."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy import false as sa_false
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from .types import BigId, JsonDocument, UtcDateTime

# Explicit constraint names keep migrations identical on SQLite and PostgreSQL.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class ProvisioningKey(Base):
    __tablename__ = "provisioning_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    fleet: Mapped[str] = mapped_column(String(64))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    max_devices: Mapped[int | None] = mapped_column(Integer)
    devices_registered: Mapped[int] = mapped_column(Integer, default=0)
    expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class KeyExchange(Base):
    """Phase 1 of provisioning. The cloud key lives here, not in a process, so any replica
    can finish the exchange; the row is deleted when the device registers."""

    __tablename__ = "key_exchanges"

    key_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    # One pending exchange per device: a new one replaces it.
    device_uuid: Mapped[str] = mapped_column(String(36), unique=True)
    provisioning_key_id: Mapped[int] = mapped_column(
        ForeignKey("provisioning_keys.id", ondelete="CASCADE"), index=True
    )
    private_key_pem: Mapped[str] = mapped_column(Text)
    public_key_pem: Mapped[str] = mapped_column(Text)
    device_public_key: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)


class Device(Base):
    __tablename__ = "devices"

    uuid: Mapped[str] = mapped_column(String(36), primary_key=True)
    device_id: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str | None] = mapped_column(String(255))
    device_type: Mapped[str | None] = mapped_column(String(255))
    mac: Mapped[str | None] = mapped_column(String(17))
    os_version: Mapped[str | None] = mapped_column(String(255))
    agent_version: Mapped[str | None] = mapped_column(String(255))
    fleet: Mapped[str | None] = mapped_column(String(64))
    # The poll looks the device up by this hash: one indexed query per request.
    api_key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    mqtt_username: Mapped[str] = mapped_column(String(255), unique=True)
    mqtt_password_hash: Mapped[str] = mapped_column(String(255))
    provisioning_key_id: Mapped[int | None] = mapped_column(
        ForeignKey("provisioning_keys.id", ondelete="SET NULL"), index=True
    )
    registered_at: Mapped[datetime] = mapped_column(UtcDateTime)
    last_seen: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # {"apps", "config"}: what the admin set.
    target_state: Mapped[dict[str, Any]] = mapped_column(JsonDocument)
    target_hash: Mapped[str] = mapped_column(String(64))
    target_version: Mapped[int] = mapped_column(BigInteger)
    target_etag: Mapped[str] = mapped_column(String(96))
    # The poll's 200 body, rendered once per change so a poll never serialises JSON.
    target_body: Mapped[str] = mapped_column(Text)
    target_updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
    reported_state: Mapped[dict[str, Any] | None] = mapped_column(JsonDocument)
    reported_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    last_report_sequence: Mapped[int | None] = mapped_column(BigInteger)
    # Rows in device_reports for this device (see services/reports.py for the bound).
    history_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # A diff arrived after a gap in the sequence: polls ask the device for a full report.
    reports_missing: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=sa_false()
    )


class DeviceReport(Base):
    """Accepted reports, newest kept (reports.HISTORY_PER_DEVICE per device)."""

    __tablename__ = "device_reports"
    __table_args__ = (Index("ix_device_reports_device_uuid_id", "device_uuid", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    device_uuid: Mapped[str] = mapped_column(ForeignKey("devices.uuid", ondelete="CASCADE"))
    sequence: Mapped[int] = mapped_column(BigInteger)
    full: Mapped[bool] = mapped_column(Boolean)
    # As the device sent it (ISO 8601 with its own offset).
    reported_at: Mapped[str] = mapped_column(String(64))
    received_at: Mapped[datetime] = mapped_column(UtcDateTime)
    body: Mapped[dict[str, Any]] = mapped_column(JsonDocument)


class DeviceAnomaly(Base):
    """Anomalies a device detected, from the summaries in its reports; one row per detection
    (the same detection in several reports is stored once), newest kept per device."""

    __tablename__ = "device_anomalies"
    __table_args__ = (
        UniqueConstraint("device_uuid", "detected_at", "source", "metric", "method"),
        Index("ix_device_anomalies_device_uuid_id", "device_uuid", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    device_uuid: Mapped[str] = mapped_column(ForeignKey("devices.uuid", ondelete="CASCADE"))
    detected_at: Mapped[int] = mapped_column(BigInteger)  # Unix ms, the device's clock
    source: Mapped[str] = mapped_column(String(128))
    metric: Mapped[str] = mapped_column(String(128))
    method: Mapped[str] = mapped_column(String(32))
    severity: Mapped[str] = mapped_column(String(16))
    detection: Mapped[dict[str, Any]] = mapped_column(JsonDocument)


class DeviceLog(Base):
    """Log records devices uploaded, one row per (device, seq); see services/logs.py for the
    retention. ``timestamp`` is kept as the device sent it, ``ts_us`` is the same instant in
    Unix microseconds for range queries."""

    __tablename__ = "device_logs"
    __table_args__ = (
        UniqueConstraint("device_uuid", "seq", name="uq_device_logs_device_uuid_seq"),
        Index("ix_device_logs_device_uuid_received_at", "device_uuid", "received_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    device_uuid: Mapped[str] = mapped_column(ForeignKey("devices.uuid", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(BigInteger)
    timestamp: Mapped[str] = mapped_column(String(40))
    ts_us: Mapped[int] = mapped_column(BigInteger)
    level: Mapped[str] = mapped_column(String(8))
    source: Mapped[str] = mapped_column(String(16))
    component: Mapped[str | None] = mapped_column(String(255))
    app: Mapped[str | None] = mapped_column(String(255))
    service: Mapped[str | None] = mapped_column(String(255))
    stream: Mapped[str | None] = mapped_column(String(8))
    message: Mapped[str] = mapped_column(Text)
    truncated: Mapped[bool] = mapped_column(Boolean)
    # JSON text as received (re-serialised); None when the record had no context.
    context: Mapped[str | None] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(UtcDateTime)

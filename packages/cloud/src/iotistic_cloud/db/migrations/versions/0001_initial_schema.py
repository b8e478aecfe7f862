"""Initial schema: provisioning keys, key exchanges, devices, report history.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None

# Frozen copies of the model types: a migration must not change when models.py does.
JSON_DOCUMENT = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "provisioning_keys",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("fleet", sa.String(64), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False),
        sa.Column("prefix", sa.String(16), nullable=False),
        sa.Column("max_devices", sa.Integer(), nullable=True),
        sa.Column("devices_registered", sa.Integer(), nullable=False),
        sa.Column("expires_at", TIMESTAMP, nullable=True),
        sa.Column("revoked_at", TIMESTAMP, nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_provisioning_keys"),
        sa.UniqueConstraint("key_hash", name="uq_provisioning_keys_key_hash"),
    )
    op.create_table(
        "devices",
        sa.Column("uuid", sa.String(36), nullable=False),
        sa.Column("device_id", sa.String(32), nullable=False),
        sa.Column("name", sa.String(255), nullable=True),
        sa.Column("device_type", sa.String(255), nullable=True),
        sa.Column("mac", sa.String(17), nullable=True),
        sa.Column("os_version", sa.String(255), nullable=True),
        sa.Column("agent_version", sa.String(255), nullable=True),
        sa.Column("fleet", sa.String(64), nullable=True),
        sa.Column("api_key_hash", sa.String(64), nullable=False),
        sa.Column("mqtt_username", sa.String(255), nullable=False),
        sa.Column("mqtt_password_hash", sa.String(255), nullable=False),
        sa.Column("provisioning_key_id", sa.Integer(), nullable=True),
        sa.Column("registered_at", TIMESTAMP, nullable=False),
        sa.Column("last_seen", TIMESTAMP, nullable=True),
        sa.Column("target_state", JSON_DOCUMENT, nullable=False),
        sa.Column("target_hash", sa.String(64), nullable=False),
        sa.Column("target_version", sa.BigInteger(), nullable=False),
        sa.Column("target_etag", sa.String(96), nullable=False),
        sa.Column("target_body", sa.Text(), nullable=False),
        sa.Column("target_updated_at", TIMESTAMP, nullable=False),
        sa.Column("reported_state", JSON_DOCUMENT, nullable=True),
        sa.Column("reported_at", TIMESTAMP, nullable=True),
        sa.Column("last_report_sequence", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["provisioning_key_id"],
            ["provisioning_keys.id"],
            name="fk_devices_provisioning_key_id_provisioning_keys",
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("uuid", name="pk_devices"),
        sa.UniqueConstraint("api_key_hash", name="uq_devices_api_key_hash"),
        sa.UniqueConstraint("device_id", name="uq_devices_device_id"),
        sa.UniqueConstraint("mqtt_username", name="uq_devices_mqtt_username"),
    )
    op.create_index("ix_devices_provisioning_key_id", "devices", ["provisioning_key_id"])
    op.create_table(
        "key_exchanges",
        sa.Column("key_id", sa.String(64), nullable=False),
        sa.Column("device_uuid", sa.String(36), nullable=False),
        sa.Column("provisioning_key_id", sa.Integer(), nullable=False),
        sa.Column("private_key_pem", sa.Text(), nullable=False),
        sa.Column("public_key_pem", sa.Text(), nullable=False),
        sa.Column("device_public_key", sa.Text(), nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("expires_at", TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(
            ["provisioning_key_id"],
            ["provisioning_keys.id"],
            name="fk_key_exchanges_provisioning_key_id_provisioning_keys",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("key_id", name="pk_key_exchanges"),
        sa.UniqueConstraint("device_uuid", name="uq_key_exchanges_device_uuid"),
    )
    op.create_index("ix_key_exchanges_expires_at", "key_exchanges", ["expires_at"])
    op.create_index(
        "ix_key_exchanges_provisioning_key_id", "key_exchanges", ["provisioning_key_id"]
    )
    op.create_table(
        "device_reports",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("device_uuid", sa.String(36), nullable=False),
        sa.Column("sequence", sa.BigInteger(), nullable=False),
        sa.Column("full", sa.Boolean(), nullable=False),
        sa.Column("reported_at", sa.String(64), nullable=False),
        sa.Column("received_at", TIMESTAMP, nullable=False),
        sa.Column("body", JSON_DOCUMENT, nullable=False),
        sa.ForeignKeyConstraint(
            ["device_uuid"],
            ["devices.uuid"],
            name="fk_device_reports_device_uuid_devices",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_device_reports"),
    )
    op.create_index("ix_device_reports_device_uuid_id", "device_reports", ["device_uuid", "id"])


def downgrade() -> None:
    op.drop_table("device_reports")
    op.drop_table("key_exchanges")
    op.drop_table("devices")
    op.drop_table("provisioning_keys")

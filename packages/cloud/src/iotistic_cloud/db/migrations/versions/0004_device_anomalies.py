"""Anomalies devices detected, one row per detection, kept per device.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None

# Frozen copy of the model type: a migration must not change when models.py does.
JSON_DOCUMENT = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "device_anomalies",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("device_uuid", sa.String(36), nullable=False),
        sa.Column("detected_at", sa.BigInteger(), nullable=False),
        sa.Column("source", sa.String(128), nullable=False),
        sa.Column("metric", sa.String(128), nullable=False),
        sa.Column("method", sa.String(32), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("detection", JSON_DOCUMENT, nullable=False),
        sa.ForeignKeyConstraint(
            ["device_uuid"],
            ["devices.uuid"],
            name="fk_device_anomalies_device_uuid_devices",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_device_anomalies"),
        sa.UniqueConstraint(
            "device_uuid",
            "detected_at",
            "source",
            "metric",
            "method",
            name="uq_device_anomalies_device_uuid",
        ),
    )
    op.create_index(
        "ix_device_anomalies_device_uuid_id", "device_anomalies", ["device_uuid", "id"]
    )


def downgrade() -> None:
    op.drop_table("device_anomalies")

"""Log records devices upload, one row per (device, seq).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "device_logs",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("device_uuid", sa.String(36), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("timestamp", sa.String(40), nullable=False),
        sa.Column("ts_us", sa.BigInteger(), nullable=False),
        sa.Column("level", sa.String(8), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("component", sa.String(255), nullable=True),
        sa.Column("app", sa.String(255), nullable=True),
        sa.Column("service", sa.String(255), nullable=True),
        sa.Column("stream", sa.String(8), nullable=True),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("truncated", sa.Boolean(), nullable=False),
        sa.Column("context", sa.Text(), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["device_uuid"],
            ["devices.uuid"],
            name="fk_device_logs_device_uuid_devices",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_device_logs"),
        sa.UniqueConstraint("device_uuid", "seq", name="uq_device_logs_device_uuid_seq"),
    )
    op.create_index(
        "ix_device_logs_device_uuid_received_at", "device_logs", ["device_uuid", "received_at"]
    )


def downgrade() -> None:
    op.drop_table("device_logs")

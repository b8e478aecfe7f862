"""Count each device's stored reports, so pruning runs only when the bound is passed.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.add_column(
        "devices",
        sa.Column("history_count", sa.Integer(), nullable=False, server_default="0"),
    )
    op.execute(
        "UPDATE devices SET history_count = "
        "(SELECT count(*) FROM device_reports WHERE device_reports.device_uuid = devices.uuid)"
    )


def downgrade() -> None:
    with op.batch_alter_table("devices") as batch:
        batch.drop_column("history_count")

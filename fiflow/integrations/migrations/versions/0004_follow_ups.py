"""Open follow-ups per customer, so a new interaction can stop them at once.

Revision ID: 0004
Revises: 0003
Create Date: 2025-01-04 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create follow_ups."""
    # Spelled out rather than taken from metadata, so this revision keeps its meaning.
    op.create_table(
        "follow_ups",
        sa.Column("follow_up_id", sa.String(128), primary_key=True),
        sa.Column("customer_id", sa.String(128), nullable=False),
        sa.Column("ticket_id", sa.String(128), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("outcome", sa.String(32), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_follow_ups_customer_id_status", "follow_ups", ["customer_id", "status"])


def downgrade() -> None:
    """Drop follow_ups."""
    op.drop_index("ix_follow_ups_customer_id_status", table_name="follow_ups")
    op.drop_table("follow_ups")

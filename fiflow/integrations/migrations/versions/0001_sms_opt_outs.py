"""SMS opt-outs, keyed by a hash of the phone number.

Revision ID: 0001
Revises:
Create Date: 2025-01-01 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create sms_opt_outs."""
    # Spelled out rather than taken from fiflow.integrations.database.metadata so this
    # revision keeps meaning the same schema after the model moves on.
    op.create_table(
        "sms_opt_outs",
        sa.Column("address_hash", sa.String(64), primary_key=True),
        sa.Column("opted_out", sa.Boolean, nullable=False),
        sa.Column("keyword", sa.String(32), nullable=True),
        sa.Column("source_message_id", sa.String(64), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    """Drop sms_opt_outs."""
    op.drop_table("sms_opt_outs")

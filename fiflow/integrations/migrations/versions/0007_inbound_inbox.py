"""Inbound messages Temporal could not take yet, for the relay to deliver once it is back.

Revision ID: 0007
Revises: 0006
Create Date: 2025-01-07 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create inbound_inbox."""
    # Spelled out rather than taken from metadata, so this revision keeps its meaning.
    op.create_table(
        "inbound_inbox",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("address_digest", sa.String(64), nullable=False),
        sa.Column("message_id", sa.String(128), nullable=False),
        sa.Column(
            "payload", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False
        ),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("last_error", sa.String(128), nullable=True),
        sa.UniqueConstraint("channel", "message_id", name="uq_inbound_inbox_channel_message_id"),
    )
    op.create_index("ix_inbound_inbox_address_digest_id", "inbound_inbox", ["address_digest", "id"])
    op.create_index("ix_inbound_inbox_delivered_at", "inbound_inbox", ["delivered_at"])


def downgrade() -> None:
    """Drop inbound_inbox."""
    op.drop_index("ix_inbound_inbox_delivered_at", table_name="inbound_inbox")
    op.drop_index("ix_inbound_inbox_address_digest_id", table_name="inbound_inbox")
    op.drop_table("inbound_inbox")

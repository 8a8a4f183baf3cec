"""Every accepted inbound SMS MessageSid, so a replayed webhook is dropped weeks later.

Revision ID: 0005
Revises: 0004
Create Date: 2025-01-05 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create sms_message_ledger."""
    # Spelled out rather than taken from metadata, so this revision keeps its meaning.
    op.create_table(
        "sms_message_ledger",
        sa.Column("message_id", sa.String(128), primary_key=True),
        sa.Column("accepted_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_sms_message_ledger_accepted_at", "sms_message_ledger", ["accepted_at"])


def downgrade() -> None:
    """Drop sms_message_ledger."""
    op.drop_index("ix_sms_message_ledger_accepted_at", table_name="sms_message_ledger")
    op.drop_table("sms_message_ledger")

"""Credit-application result reports.

Revision ID: 0002
Revises: 0001
Create Date: 2025-01-02 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create credit_reports and its indexes."""
    # Spelled out rather than taken from fiflow.integrations.database.metadata so this
    # revision keeps meaning the same schema after the model moves on.
    op.create_table(
        "credit_reports",
        sa.Column("application_id", sa.String(64), primary_key=True),
        sa.Column("product", sa.String(32), nullable=False),
        sa.Column("decision", sa.String(16), nullable=False),
        sa.Column("decided_by", sa.String(64), nullable=True),
        sa.Column("rule_set_version", sa.String(64), nullable=False),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("stored_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "report", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False
        ),
    )
    op.create_index(
        "ix_credit_reports_completed_at_application_id",
        "credit_reports",
        ["completed_at", "application_id"],
    )
    op.create_index("ix_credit_reports_decision", "credit_reports", ["decision"])
    op.create_index("ix_credit_reports_product", "credit_reports", ["product"])


def downgrade() -> None:
    """Drop credit_reports and its indexes."""
    op.drop_index("ix_credit_reports_product", table_name="credit_reports")
    op.drop_index("ix_credit_reports_decision", table_name="credit_reports")
    op.drop_index("ix_credit_reports_completed_at_application_id", table_name="credit_reports")
    op.drop_table("credit_reports")

"""Results reports of finished fraud alerts and follow-ups.

Revision ID: 0011
Revises: 0010
Create Date: 2025-01-11 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create results_reports and its indexes."""
    # Spelled out rather than taken from metadata, so this revision keeps its meaning.
    op.create_table(
        "results_reports",
        sa.Column("kind", sa.String(16), primary_key=True),
        sa.Column("subject_id", sa.String(128), primary_key=True),
        sa.Column("workflow_id", sa.String(200), nullable=False),
        sa.Column("report_type", sa.String(64), nullable=False),
        sa.Column("outcome", sa.String(32), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("stored_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "report", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False
        ),
    )
    op.create_index(
        "ix_results_reports_kind_completed_at",
        "results_reports",
        ["kind", "completed_at", "subject_id"],
    )
    op.create_index("ix_results_reports_completed_at", "results_reports", ["completed_at"])


def downgrade() -> None:
    """Drop results_reports and its indexes."""
    op.drop_index("ix_results_reports_completed_at", table_name="results_reports")
    op.drop_index("ix_results_reports_kind_completed_at", table_name="results_reports")
    op.drop_table("results_reports")

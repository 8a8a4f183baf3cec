"""Business metrics: one row per recorded fact, and the figures per hour and day.

Revision ID: 0010
Revises: 0009
Create Date: 2025-01-10 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    """Create metric_events and metric_periods."""
    # Spelled out rather than taken from metadata, so this revision keeps its meaning.
    op.create_table(
        "metric_events",
        sa.Column("id", _ID, primary_key=True),
        sa.Column("event_key", sa.String(200), nullable=False),
        sa.Column("metric", sa.String(64), nullable=False),
        sa.Column("labels", sa.String(512), nullable=False),
        sa.Column("value", sa.Float, nullable=True),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("aggregated_at", sa.DateTime(timezone=True), nullable=True),
        sa.UniqueConstraint("event_key", name="uq_metric_events_event_key"),
    )
    op.create_index("ix_metric_events_occurred_at", "metric_events", ["occurred_at"])
    op.create_index("ix_metric_events_aggregated_at", "metric_events", ["aggregated_at"])
    op.create_table(
        "metric_periods",
        sa.Column("id", _ID, primary_key=True),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("period_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("metric", sa.String(64), nullable=False),
        sa.Column("labels", sa.String(512), nullable=False),
        sa.Column("count", sa.Integer, nullable=False),
        sa.Column("sum", sa.Float, nullable=True),
        sa.Column("p50", sa.Float, nullable=True),
        sa.Column("p95", sa.Float, nullable=True),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint(
            "kind", "period_start", "metric", "labels", name="uq_metric_periods_period_metric"
        ),
    )


def downgrade() -> None:
    """Drop metric_periods and metric_events."""
    op.drop_table("metric_periods")
    op.drop_index("ix_metric_events_aggregated_at", table_name="metric_events")
    op.drop_index("ix_metric_events_occurred_at", table_name="metric_events")
    op.drop_table("metric_events")

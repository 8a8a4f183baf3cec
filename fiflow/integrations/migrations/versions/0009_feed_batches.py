"""Batch screening: files, rejected rows, chunks, matches and the alerts they start.

Revision ID: 0009
Revises: 0008
Create Date: 2025-01-09 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    """Create feed_batches, feed_batch_rejects, feed_batch_chunks, _matches and _alerts."""
    # Spelled out rather than taken from metadata, so this revision keeps its meaning.
    op.create_table(
        "feed_batches",
        sa.Column("batch_id", sa.String(40), primary_key=True),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("format", sa.String(16), nullable=False),
        sa.Column("size_bytes", sa.BigInteger, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("error", sa.String(256), nullable=True),
        sa.Column("rules_version", sa.String(64), nullable=True),
        sa.Column("sources_version", sa.String(64), nullable=True),
        sa.Column("snapshot", _JSON, nullable=True),
        sa.Column("chunks_total", sa.Integer, nullable=True),
        sa.Column("rows_read", sa.Integer, nullable=False, server_default="0"),
        sa.Column("rows_rejected", sa.Integer, nullable=False, server_default="0"),
        sa.Column("rows_matched", sa.Integer, nullable=False, server_default="0"),
        sa.Column("alerts_planned", sa.Integer, nullable=False, server_default="0"),
        sa.Column("alerts_started", sa.Integer, nullable=False, server_default="0"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "feed_batch_rejects",
        sa.Column("batch_id", sa.String(40), primary_key=True),
        sa.Column("line", sa.Integer, primary_key=True),
        sa.Column("reason", sa.String(512), nullable=False),
    )
    op.create_table(
        "feed_batch_chunks",
        sa.Column("batch_id", sa.String(40), primary_key=True),
        sa.Column("chunk", sa.Integer, primary_key=True),
        sa.Column("rows", sa.Integer, nullable=False),
        sa.Column("matched", sa.Integer, nullable=False),
        sa.Column("alerts", sa.Integer, nullable=False),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "feed_batch_matches",
        sa.Column("batch_id", sa.String(40), primary_key=True),
        sa.Column("transaction_id", sa.String(64), primary_key=True),
        sa.Column("chunk", sa.Integer, nullable=False),
        sa.Column("customer_id", sa.String(64), nullable=False),
        sa.Column("rule_ids", sa.String(1024), nullable=False),
        sa.Column("alert_key", sa.String(160), nullable=True),
    )
    op.create_table(
        "feed_batch_alerts",
        sa.Column("batch_id", sa.String(40), primary_key=True),
        sa.Column("alert_key", sa.String(160), primary_key=True),
        sa.Column("chunk", sa.Integer, nullable=False),
        sa.Column("customer_id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("item_count", sa.Integer, nullable=False),
        sa.Column("request", _JSON, nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index(
        "ix_feed_batch_alerts_batch_id_started_at", "feed_batch_alerts", ["batch_id", "started_at"]
    )


def downgrade() -> None:
    """Drop the batch screening tables."""
    op.drop_index("ix_feed_batch_alerts_batch_id_started_at", table_name="feed_batch_alerts")
    for table in (
        "feed_batch_alerts",
        "feed_batch_matches",
        "feed_batch_chunks",
        "feed_batch_rejects",
        "feed_batches",
    ):
        op.drop_table(table)

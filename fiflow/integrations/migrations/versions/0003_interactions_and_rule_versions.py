"""Interaction context (interactions, interaction_events) and activated rule set versions.

Revision ID: 0003
Revises: 0002
Create Date: 2025-01-03 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _json(*, none_as_null: bool = False) -> sa.types.TypeEngine[Any]:
    return sa.JSON(none_as_null=none_as_null).with_variant(
        postgresql.JSONB(none_as_null=none_as_null), "postgresql"
    )


def upgrade() -> None:
    """Create interactions, interaction_events and rule_versions with their indexes."""
    # Spelled out rather than taken from fiflow.integrations.database.metadata so this
    # revision keeps meaning the same schema after the model moves on.
    op.create_table(
        "interactions",
        sa.Column("interaction_id", sa.String(128), primary_key=True),
        sa.Column("customer_id", sa.String(128), nullable=True),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reason", sa.String(64), nullable=True),
        sa.Column("outcome", sa.String(64), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("summary", _json(none_as_null=True), nullable=True),
    )
    op.create_index(
        "ix_interactions_customer_id_started_at",
        "interactions",
        ["customer_id", "started_at"],
    )
    op.create_table(
        "interaction_events",
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("event_id", sa.String(128), nullable=False),
        sa.Column("interaction_id", sa.String(128), nullable=False),
        sa.Column("customer_id", sa.String(128), nullable=True),
        sa.Column("channel", sa.String(16), nullable=True),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("accepted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("late", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("attributes", _json(), nullable=False),
        sa.UniqueConstraint("event_id", name="uq_interaction_events_event_id"),
    )
    op.create_index(
        "ix_interaction_events_interaction_id", "interaction_events", ["interaction_id"]
    )
    op.create_table(
        "rule_versions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(32), nullable=False),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("content", _json(), nullable=False),
        sa.Column("content_sha256", sa.String(64), nullable=False),
        sa.Column("activated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("activated_by", sa.String(64), nullable=True),
        sa.UniqueConstraint("name", "version", name="uq_rule_versions_name_version"),
    )
    op.create_index("ix_rule_versions_name_activated_at", "rule_versions", ["name", "activated_at"])


def downgrade() -> None:
    """Drop rule_versions, interaction_events and interactions with their indexes."""
    op.drop_index("ix_rule_versions_name_activated_at", table_name="rule_versions")
    op.drop_table("rule_versions")
    op.drop_index("ix_interaction_events_interaction_id", table_name="interaction_events")
    op.drop_table("interaction_events")
    op.drop_index("ix_interactions_customer_id_started_at", table_name="interactions")
    op.drop_table("interactions")

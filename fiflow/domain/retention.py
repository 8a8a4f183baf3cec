"""Retention: how long fiflow keeps records it needs only for a while."""

from __future__ import annotations

from datetime import timedelta

from pydantic import BaseModel, Field


class RetentionInput(BaseModel):
    """How long each kind of record is kept (the retention schedule's action carries it)."""

    message_ledger: timedelta = Field(default=timedelta(days=90), gt=timedelta(0))
    interaction_events: timedelta = Field(default=timedelta(days=90), gt=timedelta(0))
    # Raw business-metric facts: the hour and day figures folded from them stay. Over a
    # year by default, so a period can still be recomputed a year on.
    metric_events: timedelta = Field(default=timedelta(days=400), gt=timedelta(0))
    # Results reports of finished alerts and follow-ups (five years: a fraud case's records).
    results_reports: timedelta = Field(default=timedelta(days=5 * 365), gt=timedelta(0))


class RetentionResult(BaseModel):
    """How many records each purge deleted."""

    message_ledger: int
    interaction_events: int
    metric_events: int = 0
    results_reports: int = 0

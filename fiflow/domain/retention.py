"""Retention: how long fiflow keeps records it needs only for a while."""

from __future__ import annotations

from datetime import timedelta

from pydantic import BaseModel, Field


class RetentionInput(BaseModel):
    """How long each kind of record is kept (the retention schedule's action carries it)."""

    message_ledger: timedelta = Field(default=timedelta(days=90), gt=timedelta(0))
    interaction_events: timedelta = Field(default=timedelta(days=90), gt=timedelta(0))


class RetentionResult(BaseModel):
    """How many records each purge deleted."""

    message_ledger: int
    interaction_events: int

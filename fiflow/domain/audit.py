"""One shape for the audit records a flow keeps of what it did.

A fraud alert's actions (`ActionRecord`), a credit application's back-office calls
(`CallRecord`) and a follow-up's contact attempts (`ContactAttempt`) are all an
`AuditEntry`: which step, how it ended, a short detail, when, and where it applies the
system that was called and the idempotency key the call carried.

The records travel in API v1 responses, in the results of completed runs and in recorded
histories, some under older field names (`action`/`status`, `channel`). Each record
therefore reads its older names as aliases and keeps writing them beside the uniform ones,
marked deprecated in the OpenAPI schema, so stored results still validate and v1 clients
keep working. The older names are not emitted through pydantic's `deprecated=`: that warns
on every serialisation, i.e. on every response and every workflow result.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal, get_args

from pydantic import BaseModel, Field

# How a step ended, for every kind of record (each uses the words that apply to it):
# - done: the step took effect (an alert's action, a back-office call, a channel's send);
# - skipped: it was not needed or not allowed (an opted-out address, nothing to undo);
# - failed: it did not take effect after its retries;
# - merged: an alert's SMS was folded into the conversation's next digest instead;
# - compensated: a credit application's call that was done and later undone;
# - sent / suppressed: a follow-up's contact went out / was held back (opted out).
# Adding a word is compatible; removing or renaming one is not (stored results carry them).
AuditOutcome = Literal["done", "skipped", "failed", "merged", "compensated", "sent", "suppressed"]
AUDIT_OUTCOMES: tuple[str, ...] = get_args(AuditOutcome)


class AuditEntry(BaseModel):
    """One thing a flow did and how it ended: the shape every audit record shares."""

    step: str = Field(
        description="What was done: the alert's action (`block_card:contest`), the call's "
        "step (`soft_pull`), the follow-up's channel (`sms`, `push`, `none`).",
        examples=["send_sms:alert"],
    )
    outcome: AuditOutcome = Field(
        description="How it ended: done, skipped, failed, merged (alerts), compensated "
        "(credit calls), sent or suppressed (follow-up contacts)."
    )
    detail: str = Field(default="", description="A short note on the outcome; may be empty.")
    at: datetime = Field(description="When the outcome was recorded.")
    system: str | None = Field(
        default=None, description="The system called (`bureau`, `crm`, `sms`), where one was."
    )
    idempotency_key: str | None = Field(
        default=None, description="The idempotency key the write carried, where it was a write."
    )

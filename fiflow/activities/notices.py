"""What an informational alert reads before it sends: its rules, and when it may send."""

from __future__ import annotations

import asyncio
from datetime import datetime

from pydantic import BaseModel
from temporalio import activity
from temporalio.exceptions import ApplicationError

from fiflow.domain.notices import quiet_hours_end
from fiflow.domain.rules import NoticeRules, QuietHours, RuleSetError
from fiflow.integrations.rules_store import RuleStore


class LoadNoticeRules(BaseModel):
    """Load the notice rules (one model argument, so fields can be added later)."""


class NoticeSendTime(BaseModel):
    """When may a notice due now reach this customer."""

    now: datetime
    quiet_hours: QuietHours | None
    customer_zone: str | None


class NoticeActivities:
    """Notice rule reads and the quiet-hours clock (kept out of workflow code)."""

    def __init__(self, store: RuleStore):
        self._store = store

    @activity.defn(name="load_notice_rules")
    async def load_notice_rules(self, req: LoadNoticeRules) -> NoticeRules:
        """The active alert rule version's `notices` section, with what rendering needs."""
        try:
            rules = await asyncio.to_thread(self._store.alert_rules)
        except RuleSetError as exc:
            # A broken rule set is an operator problem: keep retrying until it is fixed.
            raise ApplicationError(str(exc), type="rules.invalid") from exc
        return NoticeRules(
            version=rules.version,
            fi_name=rules.fi_name,
            policy=rules.notices,
            sms_max_segments=rules.sms_max_segments,
        )

    @activity.defn(name="notice_send_time")
    async def notice_send_time(self, req: NoticeSendTime) -> datetime:
        """Now, or the end of the customer's quiet hours.

        An activity (its answer recorded in history), so a tzdata update never changes a
        replay.
        """
        return quiet_hours_end(req.now, req.quiet_hours, req.customer_zone)

"""Results reports of finished fraud alerts and follow-ups: what staff read after the run.

A report is built in the workflow from its final status (a pure function, so replays build
the same one) and travels with the flow's business facts to the activity that records them,
which stores it once per workflow ID. It keeps only what a reviewer needs to judge the
outcome: identifiers of the alert or follow-up, configuration words (types, channels, rule
names, outcomes), counts and instants. Never the customer's ID, name or phone number, nor the
free text of a path or an action's detail, which can quote what an outside system said.
"""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal, get_args

from pydantic import AliasChoices, BaseModel, Field

from fiflow.domain.alerts import ActionRecord, AlertOutcome, AlertStatus
from fiflow.domain.follow_ups import ContactAttempt, FollowUpOutcome, FollowUpStatus


class ReportKind(StrEnum):
    """Which flow a results report closes."""

    ALERT = "alert"
    FOLLOW_UP = "follow_up"


# How an alert ended, in the report's words (the issue's: confirmed, contested, no reply,
# no channel), and how a follow-up did.
AlertOutcomeWord = Literal["confirmed", "contested", "no_reply", "no_channel"]
FollowUpOutcomeWord = Literal["resolved", "customer_in_touch", "gave_up"]
ALERT_OUTCOME_WORD: dict[AlertOutcome, AlertOutcomeWord] = {
    AlertOutcome.CONFIRM: "confirmed",
    AlertOutcome.CONTEST: "contested",
    AlertOutcome.NO_REPLY: "no_reply",
    AlertOutcome.NO_CHANNEL: "no_channel",
}
FOLLOW_UP_OUTCOME_WORD: dict[FollowUpOutcome, FollowUpOutcomeWord] = {
    FollowUpOutcome.RESOLVED: "resolved",
    FollowUpOutcome.CUSTOMER_IN_TOUCH: "customer_in_touch",
    FollowUpOutcome.GAVE_UP: "gave_up",
}
ALERT_OUTCOMES: tuple[str, ...] = get_args(AlertOutcomeWord)
FOLLOW_UP_OUTCOMES: tuple[str, ...] = get_args(FollowUpOutcomeWord)
# What a type or reason filter may be: a configuration word.
WORD = r"^[a-z][a-z0-9_]{0,63}$"


class ReportAction(ActionRecord):
    """One rule action the alert took: its name (no parameters, no detail) and result.

    The alert's own record's shape (domain/audit.py) with `detail`, `system` and
    `idempotency_key` left empty; reports stored before it name `step` `action` and
    `outcome` `status`, which are still read and written (deprecated) for API v1 clients.
    """

    step: str = Field(
        validation_alias=AliasChoices("step", "action"),
        description="The action's name, without what it was for (`block_card`).",
        examples=["block_card"],
    )


class AlertResultsReport(BaseModel):
    """How one fraud alert ended."""

    kind: Literal[ReportKind.ALERT] = ReportKind.ALERT
    alert_id: str
    workflow_id: str
    alert_type: str
    source: str
    channel: str | None = Field(description="The channel the alert first reached.")
    channels_used: list[str]
    outcome: AlertOutcomeWord
    reply_channel: str | None
    reply_seconds: float | None = Field(description="From the alert sent to the reply.")
    card_pre_blocked: bool
    actions: list[ReportAction]
    actions_done: int
    actions_failed: int
    failed_actions: list[str]
    rule_set_version: str | None
    received_at: datetime
    sent_at: datetime | None
    replied_at: datetime | None
    completed_at: datetime

    @property
    def subject_id(self) -> str:
        """The business ID the report is read by."""
        return self.alert_id

    @property
    def type(self) -> str:
        """What the list filters by as the report's type."""
        return self.alert_type

    @property
    def started_at(self) -> datetime:
        """When the flow began."""
        return self.received_at


class FollowUpAttemptReport(ContactAttempt):
    """One contact attempt: when, on which channel, and what came of it.

    The follow-up's own record's shape (domain/audit.py) with `detail`, `system` and
    `idempotency_key` left empty; reports stored before it name `step` `channel`, which is
    still read and written (deprecated) for API v1 clients.
    """


class FollowUpResultsReport(BaseModel):
    """How one follow-up ended."""

    kind: Literal[ReportKind.FOLLOW_UP] = ReportKind.FOLLOW_UP
    follow_up_id: str
    workflow_id: str
    ticket_id: str
    reason: str
    outcome: FollowUpOutcomeWord
    reached: bool = Field(description="Whether a contact went out on some channel.")
    attempts: int = Field(description="Contacts counted against the rules' cap.")
    channels: list[str] = Field(description="The channels that carried a contact.")
    attempt_log: list[FollowUpAttemptReport]
    reschedules: int
    rule_set_version: str | None
    follow_up_at: datetime = Field(description="The last time it was due to check.")
    first_contact_at: datetime | None
    last_contact_at: datetime | None
    completed_at: datetime

    @property
    def subject_id(self) -> str:
        """The business ID the report is read by."""
        return self.follow_up_id

    @property
    def type(self) -> str:
        """What the list filters by as the report's type."""
        return self.reason

    @property
    def started_at(self) -> datetime:
        """The first contact, else the time it was due (the follow-up's own start is not in
        its status)."""
        return self.first_contact_at or self.follow_up_at


ResultsReport = Annotated[AlertResultsReport | FollowUpResultsReport, Field(discriminator="kind")]


def _action_name(action: str) -> str:
    # `block_card:pre_block` -> `block_card`: the part after the colon may carry an ID.
    return action.split(":", 1)[0]


def alert_report(workflow_id: str, status: AlertStatus, source: str) -> AlertResultsReport:
    """The results report of a decided alert (its outcome set)."""
    assert status.outcome is not None
    t = status.timings
    received = t["received"]
    sent, replied = t.get("sent"), t.get("replied")
    actions = [
        ReportAction(step=_action_name(a.step), outcome=a.outcome, at=a.at) for a in status.actions
    ]
    reply_seconds = None
    if status.reply is not None and replied is not None:
        reply_seconds = max(0.0, (replied - (sent or received)).total_seconds())
    return AlertResultsReport(
        alert_id=status.alert_id,
        workflow_id=workflow_id,
        alert_type=status.alert_type,
        source=source,
        channel=status.channel.value if status.channel else None,
        channels_used=[c.value for c in status.channels_used],
        outcome=ALERT_OUTCOME_WORD[status.outcome],
        reply_channel=status.reply.channel.value if status.reply else None,
        reply_seconds=reply_seconds,
        card_pre_blocked=status.card_pre_blocked,
        actions=actions,
        actions_done=sum(a.outcome == "done" for a in actions),
        actions_failed=sum(a.outcome == "failed" for a in actions),
        failed_actions=[a.step for a in actions if a.outcome == "failed"],
        rule_set_version=status.rule_set_version,
        received_at=received,
        sent_at=sent,
        replied_at=replied if status.reply is not None else None,
        completed_at=t.get("decided", received),
    )


def follow_up_report(workflow_id: str, status: FollowUpStatus) -> FollowUpResultsReport:
    """The results report of a finished follow-up (its outcome set)."""
    assert status.outcome is not None
    attempts = status.attempts
    sent = [a for a in attempts if a.outcome == "sent"]
    return FollowUpResultsReport(
        follow_up_id=status.follow_up_id,
        workflow_id=workflow_id,
        ticket_id=status.ticket_id,
        # A reason may come from an interaction's words: only a configuration word is kept.
        reason=status.reason if re.match(WORD, status.reason) else "other",
        outcome=FOLLOW_UP_OUTCOME_WORD[status.outcome],
        reached=bool(sent),
        attempts=sum(a.outcome != "suppressed" for a in attempts),
        channels=list(dict.fromkeys(a.step for a in sent)),
        attempt_log=[
            FollowUpAttemptReport(at=a.at, step=a.step, outcome=a.outcome) for a in attempts
        ],
        reschedules=len(status.reschedules),
        rule_set_version=status.rule_set_version,
        follow_up_at=status.follow_up_at,
        first_contact_at=sent[0].at if sent else None,
        last_contact_at=sent[-1].at if sent else None,
        completed_at=status.ended_at or status.follow_up_at,
    )

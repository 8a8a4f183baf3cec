"""Follow-ups: reaching back to a customer whose request was left unresolved."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import AliasChoices, AwareDatetime, BaseModel, ConfigDict, Field, computed_field

from fiflow.domain.alerts import SAFE_ID
from fiflow.domain.audit import AuditEntry


class Ticket(BaseModel):
    """A CRM support ticket."""

    ticket_id: str
    customer_id: str
    subject: str = ""
    category: str = ""
    status: str  # open | pending | resolved | closed
    created_at: datetime | None = None
    resolved_at: datetime | None = None

    def is_resolved(self) -> bool:
        """Whether the request behind it is settled."""
        return self.status in ("resolved", "closed")


class FollowUpRequest(BaseModel):
    """Body of `POST /v1/follow-ups`: follow up on a CRM ticket at a time."""

    model_config = ConfigDict(extra="forbid")

    follow_up_id: str = Field(
        pattern=SAFE_ID, description="The caller's ID (idempotency key).", examples=["fu-tkt-77"]
    )
    customer_id: str = Field(
        pattern=SAFE_ID, description="The CRM customer ID.", examples=["cust-0001"]
    )
    ticket_id: str = Field(pattern=SAFE_ID, description="The CRM ticket.", examples=["tkt-77"])
    reason: str = Field(
        pattern=r"^[a-z][a-z0-9_]{0,63}$", description="Why.", examples=["unresolved"]
    )
    follow_up_at: AwareDatetime = Field(description="When to check, at most 90 days ahead.")


class FollowUpInput(BaseModel):
    """The single argument of FollowUpWorkflow."""

    follow_up_id: str
    customer_id: str
    ticket_id: str
    reason: str
    subject: str = ""
    follow_up_at: datetime
    created_at: datetime
    origin: str = "api"  # or the interaction that asked for it


class Reschedule(BaseModel):
    """Move the follow-up ("call me tomorrow at 10")."""

    model_config = ConfigDict(extra="forbid")

    follow_up_at: AwareDatetime = Field(description="The new time, at most 90 days ahead.")
    requested_by: str = Field(default="customer", max_length=64, description="Who asked.")


class Resolved(BaseModel):
    """The request was resolved elsewhere: stop."""

    model_config = ConfigDict(extra="forbid")

    resolved_by: str = Field(default="agent", max_length=64, description="Who resolved it.")
    note: str = Field(default="", max_length=1000, description="How.")


class CustomerInTouch(BaseModel):
    """The customer contacted the bank since the follow-up was set: stop."""

    interaction_id: str


class FollowUpOutcome(StrEnum):
    """How a follow-up ended."""

    RESOLVED = "resolved"  # the ticket was resolved (seen in CRM, or signalled)
    CUSTOMER_IN_TOUCH = "customer_in_touch"  # the customer contacted the bank since
    GAVE_UP = "gave_up"  # attempts or the final deadline ran out


class FollowUpState(StrEnum):
    """Where a follow-up is."""

    WAITING = "waiting"
    DONE = "done"


class ContactAttempt(AuditEntry):
    """One time the follow-up reached out.

    Outcomes: sent, suppressed (the channel was opted out), failed (no channel reached it;
    `step` is then `none`). Results of runs that ended before the audit records shared one
    shape (domain/audit.py) name `step` `channel`; it is read, and written beside `step`
    for API v1 clients.
    """

    step: str = Field(
        validation_alias=AliasChoices("step", "channel"),
        description="The channel tried: `sms`, `push`, or `none` when none could be used.",
        examples=["sms"],
    )

    @computed_field(  # type: ignore[prop-decorator]
        description="Deprecated (API v1): the same as `step`.",
        json_schema_extra={"deprecated": True},
        repr=False,
    )
    @property
    def channel(self) -> str:
        """`step` under its v1 name."""
        return self.step


class FollowUpStatus(BaseModel):
    """The follow-up as it stands; also the workflow's result."""

    follow_up_id: str
    customer_id: str
    ticket_id: str
    reason: str
    state: FollowUpState = FollowUpState.WAITING
    rule_set_version: str | None = None
    follow_up_at: datetime
    next_check_at: datetime | None = None
    attempts: list[ContactAttempt] = Field(default_factory=list)
    reschedules: list[Reschedule] = Field(default_factory=list)
    outcome: FollowUpOutcome | None = None
    path: list[str] = Field(default_factory=list)
    ended_at: datetime | None = None

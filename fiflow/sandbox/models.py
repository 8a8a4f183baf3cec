"""Request bodies of the simulated systems and of the control API.

Unknown fields are ignored, as most real back-office APIs do, so a client that sends a
little more than needed still works; the recorded call keeps the raw body.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from fiflow.sandbox.crm_tickets import TicketPriority, TicketStatus
from fiflow.sandbox.phones import canonical

E164_PATTERN = r"^\+[1-9][0-9]{6,14}$"
CURRENCY_PATTERN = r"^[A-Z]{3}$"


class NoteRequest(BaseModel):
    """A note added to a customer's CRM record."""

    text: str = Field(min_length=1, max_length=4000)
    category: str | None = Field(default=None, max_length=100)


class TicketRequest(BaseModel):
    """A support ticket to open for a customer."""

    subject: str = Field(min_length=1, max_length=200)
    category: str = Field(min_length=1, max_length=64, description='e.g. "card", "billing"')
    description: str | None = Field(default=None, max_length=4000)
    priority: TicketPriority = "normal"


class TicketStatusRequest(BaseModel):
    """A ticket's new status, with an optional note on why."""

    status: TicketStatus
    note: str | None = Field(default=None, max_length=4000)


class FraudCaseRequest(BaseModel):
    """The outcome of a fraud alert, filed as a case."""

    case_ref: str = Field(min_length=1, max_length=200)
    customer_id: str
    outcome: Literal["genuine", "fraud", "no_response"]
    alert_type: str | None = Field(default=None, max_length=100)
    note: str | None = Field(default=None, max_length=4000)


class CardActionRequest(BaseModel):
    """Block or unblock one of a customer's cards."""

    customer_id: str
    card_last4: str = Field(pattern=r"^[0-9]{4}$")
    reason: str | None = Field(default=None, max_length=500)


class CallbackRequest(BaseModel):
    """A request for an agent to call the customer back."""

    customer_id: str
    reason: str = Field(min_length=1, max_length=1000)
    priority: Literal["low", "normal", "high", "urgent"]
    reference: str | None = Field(default=None, max_length=200)


class PushRequest(BaseModel):
    """A push notification to one device."""

    device_id: str = Field(min_length=1)
    title: str = Field(max_length=200)
    body: str = Field(max_length=4000)
    actions: list[str] = Field(default_factory=list, max_length=10)
    data: dict[str, str] = Field(default_factory=dict)


def _canonical(value: Any) -> Any:
    return canonical(value) if isinstance(value, str) else value


class InboundSmsRequest(BaseModel):
    """A customer's SMS reply for the gateway to deliver to the webhook."""

    model_config = ConfigDict(populate_by_name=True)

    # Twilio reports a sender in E.164 whatever way the test or the person wrote it.
    from_: Annotated[str, BeforeValidator(_canonical)] = Field(alias="from", pattern=E164_PATTERN)
    body: str = Field(max_length=1600)
    message_sid: str | None = Field(default=None, min_length=1, max_length=64)
    to: str | None = Field(default=None, pattern=E164_PATTERN)


class BureauPullRequest(BaseModel):
    """A soft or hard pull of a customer's credit report."""

    customer_id: str
    kind: Literal["soft", "hard"]
    purpose: str = Field(min_length=1, max_length=100)
    reference: str = Field(min_length=1, max_length=200)


class OpenAccountRequest(BaseModel):
    """A credit account to open in core banking."""

    customer_id: str
    product: Literal["credit_card", "personal_loan", "overdraft"]
    amount: float = Field(gt=0, le=100_000_000, description="the limit or the loan principal")
    currency: str = Field(default="USD", pattern=CURRENCY_PATTERN)
    reference: str = Field(min_length=1, max_length=200)


class ReasonRequest(BaseModel):
    """Why an account is closed or cancelled."""

    reason: str = Field(min_length=1, max_length=1000)


class BillingAccountRequest(BaseModel):
    """A billing account for a core banking account."""

    customer_id: str
    core_account_id: str = Field(min_length=1, max_length=100)
    product: str = Field(min_length=1, max_length=100)
    currency: str = Field(default="USD", pattern=CURRENCY_PATTERN)
    reference: str = Field(min_length=1, max_length=200)


class ScheduleRequest(BaseModel):
    """A monthly statement run or recurring charge on a billing account."""

    kind: Literal["statement", "recurring_charge"]
    # At most 28 so the day exists in every month.
    day_of_month: int = Field(ge=1, le=28)
    amount: float | None = Field(default=None, ge=0, le=100_000_000)
    description: str | None = Field(default=None, max_length=500)

    @model_validator(mode="after")
    def _charge_has_amount(self) -> ScheduleRequest:
        if self.kind == "recurring_charge" and self.amount is None:
            raise ValueError("amount is required for a recurring_charge schedule")
        return self

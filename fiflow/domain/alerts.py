"""Fraud alerts: what the FI's alerting system reports and what fiflow makes of it."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Literal

from pydantic import AliasChoices, AwareDatetime, BaseModel, ConfigDict, Field, computed_field

from fiflow.domain.audit import AuditEntry, AuditOutcome
from fiflow.domain.customers import Channel, Customer
from fiflow.domain.text import MERCHANT_MAX, clean_text

# Identifiers that end up in workflow IDs and search attributes: plain tokens only.
SAFE_ID = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"
CURRENCY_SYMBOLS = {"USD": "$", "CAD": "$", "AUD": "$", "EUR": "€", "GBP": "£"}


class Transaction(BaseModel):
    """The questionable card transaction."""

    model_config = ConfigDict(extra="forbid")

    amount: Decimal = Field(
        gt=0, le=Decimal("10000000"), decimal_places=2, description="Amount.", examples=["912.00"]
    )
    currency: str = Field(pattern=r"^[A-Z]{3}$", description="ISO 4217 code.", examples=["USD"])
    merchant: str = Field(
        min_length=1, max_length=80, description="Merchant name.", examples=["ACME ELECTRONICS"]
    )
    occurred_at: AwareDatetime = Field(description="When, with a UTC offset.")
    card_last4: str = Field(
        pattern=r"^[0-9]{4}$", description="The card's last four digits.", examples=["4242"]
    )

    def display_amount(self) -> str:
        """The amount as a customer reads it ("$912.00")."""
        symbol = CURRENCY_SYMBOLS.get(self.currency)
        text = f"{self.amount:,.2f}"
        return f"{symbol}{text}" if symbol else f"{text} {self.currency}"

    def display_merchant(self) -> str:
        """The merchant name as a message may show it (the alerting system's text, cleaned)."""
        return clean_text(self.merchant, MERCHANT_MAX)


class AlertRequest(BaseModel):
    """What the FI's alerting system posts to `POST /v1/alerts`."""

    model_config = ConfigDict(extra="forbid")

    source_event_id: str = Field(
        pattern=SAFE_ID,
        description="The alerting system's event ID: the same ID always means the same alert.",
        examples=["fraud-evt-20260105-001"],
    )
    customer_id: str = Field(
        pattern=SAFE_ID, description="The CRM customer ID.", examples=["cust-0001"]
    )
    alert_type: str = Field(
        pattern=r"^[a-z][a-z0-9_]{0,63}$",
        description="One of the alert rules' types.",
        examples=["card_fraud_suspected"],
    )
    transaction: Transaction = Field(description="The questionable transaction.")


AlertSource = Literal["alerting_system", "stream", "batch", "interaction"]


class AlertInput(BaseModel):
    """The single argument of FraudAlertWorkflow."""

    alert_id: str
    request: AlertRequest
    received_at: datetime
    fi_name: str = "Fiflow Bank"
    # The per-alert key push reply tokens are made from (domain/push_binding.py); None for
    # alerts started before push replies were bound: they take no push replies.
    push_key: str | None = None
    # Where the alert came from, for the business metrics (a label, never personal data):
    # the FI's alerting system (POST /v1/alerts), the transaction stream, a batch file, or
    # an interaction's trigger.
    source: AlertSource = "alerting_system"
    # The customer's profile as the starter just read it (the API's check of the customer and
    # card), so the alert's preparation reads the CRM no second time; None (other starters,
    # a CRM the API could not reach): preparation reads it.
    customer: Customer | None = None


class ReplyOutcome(StrEnum):
    """What the customer said about the transaction."""

    CONFIRM = "confirm"
    CONTEST = "contest"


class AlertOutcome(StrEnum):
    """How an alert ended."""

    CONFIRM = "confirm"
    CONTEST = "contest"
    NO_REPLY = "no_reply"
    NO_CHANNEL = "no_channel"


class AlertState(StrEnum):
    """Where an alert is; also the AlertState search attribute."""

    STARTING = "starting"
    AWAITING_REPLY = "awaiting_reply"
    ESCALATED = "escalated"
    APPLYING = "applying"
    CONFIRMED = "confirmed"
    CONTESTED = "contested"
    NO_RESPONSE = "no_response"
    NO_CHANNEL = "no_channel"


FINAL_STATE = {
    AlertOutcome.CONFIRM: AlertState.CONFIRMED,
    AlertOutcome.CONTEST: AlertState.CONTESTED,
    AlertOutcome.NO_REPLY: AlertState.NO_RESPONSE,
    AlertOutcome.NO_CHANNEL: AlertState.NO_CHANNEL,
}


class CustomerReply(BaseModel):
    """A customer's answer, delivered to one alert (signal `customer_reply`)."""

    outcome: ReplyOutcome
    channel: Channel
    message_id: str
    received_at: datetime
    routed_by: str  # why it reached this alert: single_open_alert, reply_code, push


class ActionRecord(AuditEntry):
    """One step the alert took, for the result and the status endpoint.

    Outcomes: done, skipped, failed, merged. Results of runs that ended before the audit
    records shared one shape (domain/audit.py) name `step` `action` and `outcome` `status`;
    both are read, and written beside the new names for API v1 clients.
    """

    step: str = Field(
        validation_alias=AliasChoices("step", "action"),
        description="The action taken and what for (`send_sms:alert`, `block_card:contest`).",
        examples=["send_sms:alert"],
    )
    outcome: AuditOutcome = Field(
        validation_alias=AliasChoices("outcome", "status"),
        description="How it ended: done, skipped, failed or merged (into a digest).",
    )

    @computed_field(  # type: ignore[prop-decorator]
        description="Deprecated (API v1): the same as `step`.",
        json_schema_extra={"deprecated": True},
        repr=False,
    )
    @property
    def action(self) -> str:
        """`step` under its v1 name."""
        return self.step

    @computed_field(  # type: ignore[prop-decorator]
        description="Deprecated (API v1): the same as `outcome`.",
        json_schema_extra={"deprecated": True},
        repr=False,
    )
    @property
    def status(self) -> str:
        """`outcome` under its v1 name."""
        return self.outcome


class AlertStatus(BaseModel):
    """The alert's state while it runs and its result when it completes."""

    alert_id: str
    alert_type: str
    customer_id: str
    state: AlertState = AlertState.STARTING
    rule_set_version: str | None = None
    reply_code: str | None = None
    channel: Channel | None = None
    channels_used: list[Channel] = Field(default_factory=list)
    card_pre_blocked: bool = False
    reply: CustomerReply | None = None
    ignored_replies: list[CustomerReply] = Field(default_factory=list)
    outcome: AlertOutcome | None = None
    path: list[str] = Field(default_factory=list)
    actions: list[ActionRecord] = Field(default_factory=list)
    timings: dict[str, datetime] = Field(default_factory=dict)
    # Devices the alert was pushed to: a push reply is accepted from these only.
    pushed_to: list[str] = Field(default_factory=list)

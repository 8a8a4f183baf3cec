"""What a screened transaction starts: the one decision both feed paths share.

A transaction can meet several FI conditions and several of the customer's own alert
preferences. Both the stream consumer and the batch workflow turn those matches into alert
starts with `plan_alerts`, so the two paths never differ in what the customer receives:

- any fraud condition met: one FraudAlertWorkflow (the first such condition in rule-file
  order names the alert type); informational matches of the same transaction are not sent
  besides (the fraud alert already tells the customer about this transaction);
- otherwise, any informational condition or preference met: one informational notice that
  lists every reason, on the channel the first match names (or the customer's preference);
  it may arrive in quiet hours only if every match allows it.

Both starts are keyed by the transaction id (`source_event_id`), so a redelivered message,
a restarted consumer or the same transaction in a batch file never start a second one.
"""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from fiflow.domain.alerts import SAFE_ID, AlertRequest
from fiflow.domain.alerts import Transaction as AlertTransaction
from fiflow.domain.customers import Channel
from fiflow.domain.feeds.conditions import Starts
from fiflow.domain.feeds.transactions import Transaction

_CENTS = Decimal("0.01")
# The fraud alert API's bounds for an amount; a transaction outside them is told as a notice.
_FRAUD_AMOUNT = (Decimal("0.01"), Decimal("10000000"))


class MatchSource(StrEnum):
    """Where a match came from."""

    CONDITION = "condition"  # the FI's rules (fiflow/rules/conditions.yaml)
    PREFERENCE = "preference"  # the customer's own alert preferences


class Origin(StrEnum):
    """Which path screened the transaction (a metrics label; no personal data)."""

    STREAM = "stream"
    BATCH = "batch"


class Match(BaseModel):
    """One condition or preference a transaction met."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: MatchSource
    # The condition id, or the preference kind ("amount_over", "international", ...).
    rule_id: str = Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")
    starts: Starts
    alert_type: str = Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")
    # None: the customer's preferred channel.
    channel: Channel | None = None
    # Whether it may reach the customer inside their quiet hours.
    quiet_hours_ok: bool = False


class NoticeItem(BaseModel):
    """One transaction a notice tells about, with why."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    transaction_id: str = Field(pattern=SAFE_ID)
    reasons: list[str] = Field(min_length=1, description="The alert types met, in order.")
    amount: str = Field(description="Exact decimal text.")
    currency: str
    merchant: str
    card_last4: str
    occurred_at: AwareDatetime


class NoticeRequest(BaseModel):
    """An informational alert: one message, no reply expected (InformationalAlertWorkflow)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # The transaction id (or, for a batch digest, a key derived from the batch and customer).
    source_event_id: str = Field(pattern=SAFE_ID)
    customer_id: str = Field(pattern=SAFE_ID)
    # The first item's first reason; a digest of several items says "digest".
    alert_type: str = Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")
    items: list[NoticeItem] = Field(min_length=1, max_length=50)
    channel: Channel | None = None
    quiet_hours_ok: bool = False
    origin: Origin


class AlertPlan(BaseModel):
    """What one screened transaction starts: a fraud alert, a notice, or nothing."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    fraud_alert: AlertRequest | None = None
    notice: NoticeRequest | None = None

    @property
    def empty(self) -> bool:
        """Nothing to start."""
        return self.fraud_alert is None and self.notice is None


def notice_item(txn: Transaction, matches: list[Match]) -> NoticeItem:
    """The notice line for one transaction and the matches that name it."""
    reasons = list(dict.fromkeys(m.alert_type for m in matches))
    return NoticeItem(
        transaction_id=txn.transaction_id,
        reasons=reasons,
        amount=str(txn.amount),
        currency=txn.currency,
        merchant=txn.merchant,
        card_last4=txn.card_last4,
        occurred_at=txn.occurred_at,
    )


def alert_transaction(txn: Transaction) -> AlertTransaction:
    """The fraud alert's view of a card transaction (a positive amount with two decimals)."""
    return AlertTransaction(
        amount=abs(txn.amount).quantize(_CENTS),
        currency=txn.currency,
        merchant=txn.merchant[:80],
        occurred_at=txn.occurred_at,
        card_last4=txn.card_last4,
    )


def plan_alerts(txn: Transaction, matches: list[Match], origin: Origin) -> AlertPlan:
    """The alert starts for one transaction's matches (see the module docstring)."""
    fraud = [m for m in matches if m.starts is Starts.FRAUD_ALERT]
    low, high = _FRAUD_AMOUNT
    if fraud and low <= abs(txn.amount).quantize(_CENTS) <= high:
        return AlertPlan(
            fraud_alert=AlertRequest(
                source_event_id=txn.transaction_id,
                customer_id=txn.customer_id,
                alert_type=fraud[0].alert_type,
                transaction=alert_transaction(txn),
            )
        )
    if not matches:
        return AlertPlan()
    return AlertPlan(
        notice=NoticeRequest(
            source_event_id=txn.transaction_id,
            customer_id=txn.customer_id,
            alert_type=matches[0].alert_type,
            items=[notice_item(txn, matches)],
            channel=next((m.channel for m in matches if m.channel is not None), None),
            quiet_hours_ok=all(m.quiet_hours_ok for m in matches),
            origin=origin,
        )
    )

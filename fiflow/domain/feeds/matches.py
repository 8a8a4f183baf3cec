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

import re
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from fiflow.domain.alerts import SAFE_ID, AlertRequest
from fiflow.domain.alerts import Transaction as AlertTransaction
from fiflow.domain.customers import Channel
from fiflow.domain.feeds.conditions import Condition, Starts
from fiflow.domain.feeds.transactions import Transaction
from fiflow.domain.keys import keyed_hash

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


class NoticeItemKind(StrEnum):
    """What a notice item is about."""

    TRANSACTION = "transaction"
    BALANCE = "balance"  # a settlement/balance record below the customer's alert amount


def condition_match(condition: Condition) -> Match:
    """A met FI condition as a match (both feed paths build theirs here)."""
    channel = Channel(condition.channel.value) if condition.channel is not None else None
    return Match(
        source=MatchSource.CONDITION,
        rule_id=condition.id,
        starts=condition.starts,
        alert_type=condition.alert_type,
        channel=channel,
    )


class NoticeItem(BaseModel):
    """One transaction (or balance record) a notice tells about, with why.

    A balance item reuses the transaction fields where they mean the same: `transaction_id`
    holds the record's key (`balance_event_id`), `amount` the balance, `occurred_at` its
    `as_of`; `merchant` and `card_last4` stay empty. Fields added later have defaults, so
    notices already in flight read as before.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    transaction_id: str = Field(pattern=SAFE_ID)
    reasons: list[str] = Field(min_length=1, description="The alert types met, in order.")
    amount: str = Field(description="Exact decimal text.")
    currency: str
    merchant: str = ""
    card_last4: str = ""
    occurred_at: AwareDatetime
    kind: NoticeItemKind = NoticeItemKind.TRANSACTION
    # Balance items: the account reference masked to its last four, and the alert's amount.
    account_last4: str | None = Field(default=None, pattern=r"^[A-Za-z0-9]{1,4}$")
    threshold: str | None = Field(default=None, description="Exact decimal text.")

    @model_validator(mode="after")
    def _balance_fields(self) -> NoticeItem:
        if self.kind is NoticeItemKind.BALANCE and (
            self.account_last4 is None or self.threshold is None
        ):
            raise ValueError("a balance item names account_last4 and threshold")
        return self


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


# --- balances (settlement files) -----------------------------------------------------------


def masked_account(account_id: str) -> str:
    """The account reference as a customer may read it: its last four digits.

    References with fewer than four digits show their last four letters or digits.
    """
    digits = re.sub(r"[^0-9]", "", account_id)
    source = digits if len(digits) >= 4 else re.sub(r"[^A-Za-z0-9]", "", account_id)
    return source[-4:] or "0000"


def balance_event_id(key: str, customer_id: str, account_id: str, as_of: datetime) -> str:
    """The source_event_id of a balance notice: one per customer, account and `as_of`.

    The same balance in the same file twice, or in two files, names the same notice (so one
    text). A keyed hash: account references stay out of keys and the batch tables.
    """
    instant = as_of.astimezone(UTC).isoformat()
    return "bal-" + keyed_hash(key, f"balance:{customer_id}|{account_id}|{instant}", length=32)


def balance_notice(
    *,
    event_id: str,
    customer_id: str,
    account_id: str,
    balance: Decimal,
    currency: str,
    as_of: datetime,
    threshold: Decimal,
    matches: list[Match],
    origin: Origin,
) -> NoticeRequest | None:
    """The notice for one balance record and the preference matches it met (or None)."""
    if not matches:
        return None
    item = NoticeItem(
        kind=NoticeItemKind.BALANCE,
        transaction_id=event_id,
        reasons=list(dict.fromkeys(m.alert_type for m in matches)),
        amount=format(balance, "f"),
        currency=currency,
        occurred_at=as_of,
        account_last4=masked_account(account_id),
        threshold=format(threshold, "f"),
    )
    return NoticeRequest(
        source_event_id=event_id,
        customer_id=customer_id,
        alert_type=matches[0].alert_type,
        items=[item],
        channel=next((m.channel for m in matches if m.channel is not None), None),
        quiet_hours_ok=all(m.quiet_hours_ok for m in matches),
        origin=origin,
    )

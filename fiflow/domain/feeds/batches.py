"""Batch screening's models and its one decision beyond `plan_alerts`: the digest.

A batch file can hold many transactions of one customer that each meet a condition. Sent one
by one they would be a burst of messages; so the notices of one customer in one batch are
told together, as one digest notice, when there are at least `DigestRules.min_items` of them
(feed_sources.yaml `digest:`). Fraud alerts are never merged: each asks the customer about one
transaction, and is keyed by its transaction id like on the stream, so a transaction seen on
both paths is one alert. A single notice keeps the transaction id as its key for the same
reason; a digest's key is derived from the batch and the customer, so a resumed or repeated
run of the same file names the same digest.
"""

from __future__ import annotations

from collections.abc import Iterable

from pydantic import BaseModel, ConfigDict, Field

from fiflow.domain.alerts import AlertRequest
from fiflow.domain.feeds.matches import Match, NoticeRequest, Origin, plan_alerts
from fiflow.domain.feeds.transactions import Transaction

DIGEST_ALERT_TYPE = "digest"


class DigestRules(BaseModel):
    """How one customer's notices from one batch are told: one message, not a burst."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # A customer with at least this many notices in a batch gets them as one digest.
    min_items: int = Field(default=2, ge=2, le=50)
    # Transactions per digest message (a notice lists at most 50); more are split.
    max_items: int = Field(default=20, ge=2, le=50)


class BatchInput(BaseModel):
    """One batch file to screen (already in the store and registered)."""

    batch_id: str = Field(pattern=r"^b[0-9a-f]{32}$")
    # Chunks screened at once by this run (each on any worker).
    parallelism: int = Field(default=8, ge=1, le=256)
    # Alerts started per second by this batch at most.
    alerts_per_second: float = Field(default=20.0, gt=0, le=10_000)
    # A worker that stops heartbeating this long is taken for dead: its step runs elsewhere.
    heartbeat_seconds: float = Field(default=30.0, ge=1, le=600)
    # Where a run that continued as new picks up (None: from the start).
    next_chunk: int | None = None
    chunks: int | None = None


class BatchResult(BaseModel):
    """What the run did; `state` is completed, or failed when the file was unreadable."""

    batch_id: str
    state: str
    rows_read: int = 0
    rows_rejected: int = 0
    rows_matched: int = 0
    alerts_planned: int = 0
    alerts_started: int = 0
    error: str | None = None


class SweepInbox(BaseModel):
    """Take in the files waiting in the inbox directory."""


class SweepResult(BaseModel):
    """The batches the sweep took in (new or repeated files), and the files it set aside."""

    batch_ids: list[str]
    set_aside: int = 0


class CustomerAlerts(BaseModel):
    """What one customer's matched transactions of one batch start."""

    fraud_alerts: list[AlertRequest] = Field(default_factory=list)
    notices: list[NoticeRequest] = Field(default_factory=list)
    # transaction id -> the source_event_id of the alert or notice that tells about it.
    told_by: dict[str, str] = Field(default_factory=dict)


def digest_key(batch_id: str, customer_id: str, part: int) -> str:
    """The source_event_id of a customer's digest (part n of a long one)."""
    return f"bd:{batch_id}:{customer_id}:{part}"


def customer_alerts(
    batch_id: str,
    matched: Iterable[tuple[Transaction, list[Match]]],
    digest: DigestRules,
) -> CustomerAlerts:
    """One customer's alerts: fraud alerts one each, notices merged into digests."""
    ordered = sorted(matched, key=lambda tm: (tm[0].instant, tm[0].transaction_id))
    out = CustomerAlerts()
    notices: list[NoticeRequest] = []
    for txn, matches in ordered:
        plan = plan_alerts(txn, matches, Origin.BATCH)
        if plan.fraud_alert is not None:
            out.fraud_alerts.append(plan.fraud_alert)
            out.told_by[txn.transaction_id] = plan.fraud_alert.source_event_id
        elif plan.notice is not None:
            notices.append(plan.notice)
    if len(notices) < digest.min_items:
        out.notices = notices
        out.told_by.update({n.source_event_id: n.source_event_id for n in notices})
        return out
    for part, start in enumerate(range(0, len(notices), digest.max_items)):
        group = notices[start : start + digest.max_items]
        key = digest_key(batch_id, group[0].customer_id, part)
        items = [item for n in group for item in n.items]
        out.notices.append(
            NoticeRequest(
                source_event_id=key,
                customer_id=group[0].customer_id,
                alert_type=DIGEST_ALERT_TYPE if len(items) > 1 else group[0].alert_type,
                items=items,
                channel=next((n.channel for n in group if n.channel is not None), None),
                quiet_hours_ok=all(n.quiet_hours_ok for n in group),
                origin=Origin.BATCH,
            )
        )
        out.told_by.update({n.source_event_id: key for n in group})
    return out

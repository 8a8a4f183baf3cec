"""Business metric facts and the period fold: exact counts, sums and percentiles."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from fiflow.domain.alerts import (
    ActionRecord,
    AlertOutcome,
    AlertStatus,
    CustomerReply,
    ReplyOutcome,
)
from fiflow.domain.customers import Channel
from fiflow.domain.metrics import (
    Metric,
    MetricEvent,
    PeriodKind,
    alert_events,
    fold,
    labels_key,
    percentile,
    period_start,
)

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


def test_periods_start_on_the_utc_hour_and_day() -> None:
    at = datetime(2026, 3, 2, 1, 30, tzinfo=UTC) + timedelta(seconds=7)
    assert period_start(PeriodKind.HOUR, at) == datetime(2026, 3, 2, 1, tzinfo=UTC)
    assert period_start(PeriodKind.DAY, at) == datetime(2026, 3, 2, tzinfo=UTC)
    # An instant with another offset falls in its UTC period (00:30+02:00 is the day before).
    east = datetime.fromisoformat("2026-03-02T00:30:00+02:00")
    assert period_start(PeriodKind.DAY, east) == datetime(2026, 3, 1, tzinfo=UTC)


def test_nearest_rank_percentiles() -> None:
    values = [float(v) for v in range(1, 21)]  # 1..20
    assert percentile(values, 0.5) == 10.0
    assert percentile(values, 0.95) == 19.0
    assert percentile([7.0], 0.95) == 7.0


def test_the_fold_counts_sums_and_percentiles_per_period_and_label_set() -> None:
    sms = labels_key({"type": "card_fraud_suspected", "channel": "sms"})
    push = labels_key({"type": "card_fraud_suspected", "channel": "push"})
    rows = [
        (T0 + timedelta(minutes=1), "alert_reply_seconds", sms, 30.0),
        (T0 + timedelta(minutes=2), "alert_reply_seconds", sms, 10.0),
        (T0 + timedelta(minutes=59), "alert_reply_seconds", sms, 20.0),
        (T0 + timedelta(minutes=61), "alert_reply_seconds", sms, 100.0),  # the next hour
        (T0 + timedelta(minutes=5), "alert_reply_seconds", push, 4.0),
        (T0 + timedelta(minutes=5), "alerts_started", push, None),
        (T0 + timedelta(minutes=6), "alerts_started", push, None),
    ]
    hours = {(f.start, f.metric, f.labels): f for f in fold(PeriodKind.HOUR, rows)}
    first = hours[(T0, "alert_reply_seconds", sms)]
    assert (first.count, first.sum, first.p50, first.p95) == (3, 60.0, 20.0, 30.0)
    second = hours[(T0 + timedelta(hours=1), "alert_reply_seconds", sms)]
    assert (second.count, second.sum, second.p50, second.p95) == (1, 100.0, 100.0, 100.0)
    started = hours[(T0, "alerts_started", push)]
    assert (started.count, started.sum, started.p50, started.p95) == (2, None, None, None)
    assert len(hours) == 4

    days = fold(PeriodKind.DAY, rows)
    day_sms = next(f for f in days if f.metric == "alert_reply_seconds" and f.labels == sms)
    assert day_sms.start == datetime(2026, 3, 2, tzinfo=UTC)
    assert (day_sms.count, day_sms.sum, day_sms.p50, day_sms.p95) == (4, 160.0, 20.0, 100.0)


def test_labels_are_only_the_declared_ones_and_plain_words() -> None:
    with pytest.raises(ValidationError):
        MetricEvent(
            key="k",
            metric=Metric.FOLLOW_UPS,
            labels={"outcome": "resolved", "reached": "yes", "customer_id": "cust-1"},
            occurred_at=T0,
        )
    ev = MetricEvent(
        key="k",
        metric=Metric.TRIGGERS_FIRED,
        labels={"trigger": "Call +1 555 0100 John"},
        occurred_at=T0,
    )
    assert ev.labels == {"trigger": "other"}


def test_a_confirmed_alert_yields_started_outcome_reply_time_and_its_actions() -> None:
    status = AlertStatus(
        alert_id="al-1",
        alert_type="card_fraud_suspected",
        customer_id="cust-0001",
        channel=Channel.SMS,
        outcome=AlertOutcome.CONFIRM,
        reply=CustomerReply(
            outcome=ReplyOutcome.CONFIRM,
            channel=Channel.SMS,
            message_id="SM1",
            received_at=T0 + timedelta(seconds=90),
            routed_by="reply_code",
        ),
        actions=[
            ActionRecord(step="send_sms:alert", outcome="done", at=T0),
            ActionRecord(step="unblock_card:confirm", outcome="skipped", at=T0),
            ActionRecord(step="record_fraud_outcome:confirm", outcome="done", at=T0),
            ActionRecord(step="add_crm_note:confirm", outcome="failed", at=T0),
        ],
        timings={
            "received": T0,
            "sent": T0 + timedelta(seconds=2),
            "replied": T0 + timedelta(seconds=92),
            "decided": T0 + timedelta(seconds=93),
        },
    )
    events = alert_events("alert-al-1", status, "stream")
    assert [(e.key, e.metric.value, e.labels, e.value) for e in events] == [
        ("alert-al-1:alerts_started", "alerts_started",
         {"type": "card_fraud_suspected", "source": "stream", "channel": "sms"}, None),
        ("alert-al-1:alert_outcomes", "alert_outcomes",
         {"type": "card_fraud_suspected", "outcome": "confirmed"}, None),
        ("alert-al-1:alert_reply_seconds", "alert_reply_seconds",
         {"type": "card_fraud_suspected", "channel": "sms"}, 90.0),
        ("alert-al-1:alert_actions:0", "alert_actions",
         {"type": "card_fraud_suspected", "action": "send_sms", "status": "done"}, None),
        ("alert-al-1:alert_actions:2", "alert_actions",
         {"type": "card_fraud_suspected", "action": "record_fraud_outcome", "status": "done"},
         None),
        ("alert-al-1:alert_actions:3", "alert_actions",
         {"type": "card_fraud_suspected", "action": "add_crm_note", "status": "failed"}, None),
    ]  # fmt: skip
    assert all("cust-0001" not in str(e.labels) for e in events)

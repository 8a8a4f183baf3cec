"""Results reports built from a flow's final status: the right figures, no personal data."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from fiflow.domain.alerts import (
    ActionRecord,
    AlertOutcome,
    AlertStatus,
    CustomerReply,
    ReplyOutcome,
)
from fiflow.domain.customers import Channel
from fiflow.domain.follow_ups import ContactAttempt, FollowUpOutcome, FollowUpStatus
from fiflow.domain.metrics import alert_events, follow_up_events
from fiflow.domain.results_reports import AlertResultsReport, FollowUpResultsReport

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


def _alert(outcome: AlertOutcome | None) -> AlertStatus:
    return AlertStatus(
        alert_id="al-1",
        alert_type="card_fraud_suspected",
        customer_id="cust-0001",
        rule_set_version="alerts-7",
        channel=Channel.SMS,
        channels_used=[Channel.SMS, Channel.PUSH],
        reply=CustomerReply(
            outcome=ReplyOutcome.CONTEST, channel=Channel.PUSH, message_id="m1",
            received_at=T0 + timedelta(seconds=70), routed_by="push",
        ),
        outcome=outcome,
        path=["sent to +15550100 for Alex Doe"],
        actions=[
            ActionRecord(step="block_card:contest", outcome="done", at=T0, detail="card 4242"),
            ActionRecord(step="add_crm_note:contest", outcome="failed", at=T0, detail="Alex"),
            ActionRecord(step="unblock_card:confirm", outcome="skipped", at=T0),
        ],
        timings={
            "received": T0,
            "sent": T0 + timedelta(seconds=10),
            "replied": T0 + timedelta(seconds=70),
            "decided": T0 + timedelta(seconds=72),
        },
    )  # fmt: skip


def test_a_decided_alert_carries_its_report_on_its_first_fact_only() -> None:
    events = alert_events("alert-al-1", _alert(AlertOutcome.CONTEST), "batch")

    [report] = [e.report for e in events if e.report is not None]
    assert events[0].report is report
    assert isinstance(report, AlertResultsReport)
    assert (report.alert_id, report.workflow_id, report.source) == ("al-1", "alert-al-1", "batch")
    assert (report.outcome, report.reply_channel, report.reply_seconds) == (
        "contested",
        "push",
        60.0,
    )
    assert report.channels_used == ["sms", "push"]
    assert [(a.step, a.outcome) for a in report.actions] == [
        ("block_card", "done"),
        ("add_crm_note", "failed"),
        ("unblock_card", "skipped"),
    ]
    assert (report.actions_done, report.actions_failed, report.failed_actions) == (
        1,
        1,
        ["add_crm_note"],
    )
    assert report.rule_set_version == "alerts-7"
    assert report.completed_at == T0 + timedelta(seconds=72)
    body = json.dumps(report.model_dump(mode="json"))
    for personal in ("cust-0001", "+15550100", "Alex", "4242"):
        assert personal not in body


def test_an_undecided_alert_has_no_report() -> None:
    assert all(e.report is None for e in alert_events("alert-al-1", _alert(None), "batch"))


def test_a_follow_up_report_counts_attempts_and_keeps_only_a_token_reason() -> None:
    status = FollowUpStatus(
        follow_up_id="fu-1",
        customer_id="cust-0001",
        ticket_id="tkt-1",
        reason="Alex called about card 4242",
        follow_up_at=T0,
        attempts=[
            ContactAttempt(at=T0, step="push", outcome="suppressed"),
            ContactAttempt(at=T0 + timedelta(hours=1), step="sms", outcome="sent"),
            ContactAttempt(at=T0 + timedelta(days=1), step="none", outcome="failed"),
        ],
        outcome=FollowUpOutcome.GAVE_UP,
        ended_at=T0 + timedelta(days=2),
    )

    [event] = follow_up_events("followup-fu-1", status)

    report = event.report
    assert isinstance(report, FollowUpResultsReport)
    assert (report.outcome, report.reached, report.attempts, report.channels) == (
        "gave_up",
        True,
        2,
        ["sms"],
    )
    assert report.first_contact_at == report.last_contact_at == T0 + timedelta(hours=1)
    assert report.reason == "other"
    assert "cust-0001" not in json.dumps(report.model_dump(mode="json"))

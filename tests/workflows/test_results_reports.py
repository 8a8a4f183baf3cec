"""Results reports of alerts and follow-ups, on the time-skipping server: stored once when the
flow records its facts, with the right content and no personal data; recording again stores
nothing new."""

from __future__ import annotations

import json
from pathlib import Path

from temporalio.testing import ActivityEnvironment, WorkflowEnvironment

from fiflow.activities.metrics import MetricsActivities
from fiflow.domain.alerts import AlertOutcome
from fiflow.domain.follow_ups import FollowUpOutcome
from fiflow.domain.metrics import RecordMetricEvents, alert_events, follow_up_events
from fiflow.domain.results_reports import AlertResultsReport, FollowUpResultsReport, ReportKind
from fiflow.integrations.metrics_store import MetricsStore
from fiflow.integrations.results_reports import ResultsReportStore
from tests.workflows.harness import Harness, alert_request, code_in, sms_customer
from tests.workflows.interaction_harness import rules_copy, running_interaction_harness
from tests.workflows.test_follow_ups import follow_up_input, noon_tomorrow


def _all(store: ResultsReportStore, kind: ReportKind) -> list[object]:
    return [s.report for s in store.list(kind).items]


async def test_a_confirmed_alert_leaves_one_report_and_a_second_record_adds_nothing(
    h: Harness,
) -> None:
    customer = h.add(sms_customer())
    handle = await h.start(alert_request(customer))
    [alert_sms] = await h.wait_for_sms(customer.phone or "", 1)
    await h.reply(customer.phone or "", f"YES {code_in(alert_sms)}")
    result = await h.finish(handle)
    assert h.engine is not None
    store = ResultsReportStore(h.engine)

    assert result.outcome is AlertOutcome.CONFIRM
    [report] = _all(store, ReportKind.ALERT)
    assert isinstance(report, AlertResultsReport)
    assert (report.alert_id, report.workflow_id) == (result.alert_id, handle.id)
    assert (report.alert_type, report.source, report.outcome) == (
        result.alert_type,
        "alerting_system",
        "confirmed",
    )
    assert (report.channel, report.channels_used, report.reply_channel) == ("sms", ["sms"], "sms")
    assert report.reply_seconds is not None and 0 <= report.reply_seconds < 30
    assert report.rule_set_version == result.rule_set_version is not None
    recorded = [a for a in result.actions if a.outcome in ("done", "failed", "skipped")]
    assert [(a.step, a.outcome) for a in report.actions] == [
        (a.step.split(":")[0], a.outcome) for a in recorded if a.at <= result.timings["decided"]
    ]
    assert "record_fraud_outcome" in [a.step for a in report.actions if a.outcome == "done"]
    assert report.actions_done == sum(a.outcome == "done" for a in report.actions)
    assert report.failed_actions == [a.step for a in report.actions if a.outcome == "failed"]
    assert report.received_at <= report.sent_at <= report.replied_at <= report.completed_at  # type: ignore[operator]
    assert store.get(ReportKind.ALERT, result.alert_id) is not None
    body = json.dumps(report.model_dump(mode="json"))
    assert customer.customer_id not in body and (customer.phone or "") not in body

    # The flow's facts recorded again (a re-run local activity): no new report, no new fact.
    metrics = MetricsActivities(MetricsStore(h.engine), store)
    again = RecordMetricEvents(events=alert_events(handle.id, result, "alerting_system"))
    assert await ActivityEnvironment().run(metrics.record_metric_events, again) == 0
    assert _all(store, ReportKind.ALERT) == [report]


async def test_a_follow_up_leaves_one_report_and_a_second_record_adds_nothing(
    time_skipping_env: WorkflowEnvironment, task_queue: str, tmp_path: Path
) -> None:
    rules = rules_copy(
        tmp_path, max_attempts=2, attempt_window="P7D", retry_after="P1D", give_up_after="P3D"
    )
    async with running_interaction_harness(time_skipping_env, task_queue, tmp_path, rules) as ih:
        customer = ih.customer()
        inp = await follow_up_input(ih, customer, await noon_tomorrow(ih))
        handle = await ih.follow_up(inp)
        result = await ih.finish(handle)
        assert ih.engine is not None
        store = ResultsReportStore(ih.engine)
        [report] = _all(store, ReportKind.FOLLOW_UP)

        metrics = MetricsActivities(MetricsStore(ih.engine), store)
        again = RecordMetricEvents(events=follow_up_events(handle.id, result))
        assert await ActivityEnvironment().run(metrics.record_metric_events, again) == 0
        assert _all(store, ReportKind.FOLLOW_UP) == [report]
        assert _all(store, ReportKind.ALERT) == []

    assert result.outcome is FollowUpOutcome.GAVE_UP
    assert isinstance(report, FollowUpResultsReport)
    assert (report.follow_up_id, report.workflow_id, report.ticket_id) == (
        inp.follow_up_id,
        handle.id,
        inp.ticket_id,
    )
    assert (report.outcome, report.reason, report.reached) == ("gave_up", "tech_support", True)
    sent = [a for a in result.attempts if a.outcome == "sent"]
    assert report.attempts == len(sent) == 2
    assert report.channels == ["sms"]
    assert [(a.at, a.outcome) for a in report.attempt_log] == [
        (a.at, a.outcome) for a in result.attempts
    ]
    assert (report.first_contact_at, report.last_contact_at) == (sent[0].at, sent[-1].at)
    assert report.completed_at == result.ended_at
    assert report.rule_set_version == result.rule_set_version is not None
    body = json.dumps(report.model_dump(mode="json"))
    assert customer.customer_id not in body and (customer.phone or "") not in body

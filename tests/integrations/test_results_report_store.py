"""Results reports and the metric-fact purge against SQLite and a real PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from fiflow.domain.metrics import Metric, MetricEvent, PeriodKind
from fiflow.domain.results_reports import (
    AlertResultsReport,
    FollowUpResultsReport,
    ReportAction,
    ReportKind,
)
from fiflow.integrations.codec import EncryptionCodec, KeyRing, KeyRingError, new_key
from fiflow.integrations.database import results_reports
from fiflow.integrations.metrics_store import MetricsStore
from fiflow.integrations.reports import InvalidCursor
from fiflow.integrations.results_reports import ResultsReportStore

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def alert(alert_id: str, at: datetime = T0, outcome: str = "confirmed") -> AlertResultsReport:
    return AlertResultsReport(
        alert_id=alert_id,
        workflow_id=f"alert-{alert_id}",
        alert_type="card_fraud_suspected",
        source="stream",
        channel="sms",
        channels_used=["sms"],
        outcome=outcome,
        reply_channel="sms",
        reply_seconds=42.0,
        card_pre_blocked=False,
        actions=[ReportAction(action="block_card", status="failed", at=at)],
        actions_done=0,
        actions_failed=1,
        failed_actions=["block_card"],
        rule_set_version="2025-01-01",
        received_at=at - timedelta(minutes=5),
        sent_at=at - timedelta(minutes=4),
        replied_at=at - timedelta(minutes=3),
        completed_at=at,
    )


def follow_up(follow_up_id: str, at: datetime = T0) -> FollowUpResultsReport:
    return FollowUpResultsReport(
        follow_up_id=follow_up_id,
        workflow_id=f"followup-{follow_up_id}",
        ticket_id="tkt-1",
        reason="unresolved",
        outcome="resolved",
        reached=False,
        attempts=0,
        channels=[],
        attempt_log=[],
        reschedules=0,
        rule_set_version=None,
        follow_up_at=at - timedelta(days=1),
        first_contact_at=None,
        last_contact_at=None,
        completed_at=at,
    )


def test_a_report_is_stored_once_per_flow_and_read_back(engine: Engine) -> None:
    store = ResultsReportStore(engine)
    first = alert("al-1")

    assert store.save(first, T0) is True
    assert store.save(alert("al-1", outcome="contested"), T0) is False  # the first one wins
    assert store.save(follow_up("al-1"), T0) is True  # another kind, same id: its own row

    got = store.get(ReportKind.ALERT, "al-1")
    assert got is not None and got.report == first and got.stored_at == T0
    assert store.get(ReportKind.ALERT, "al-2") is None
    fu = store.get(ReportKind.FOLLOW_UP, "al-1")
    assert fu is not None and isinstance(fu.report, FollowUpResultsReport)


def test_the_body_is_sealed_at_rest_and_needs_the_key_ring(engine: Engine) -> None:
    store = ResultsReportStore(engine, sealer=EncryptionCodec(KeyRing.parse(new_key())))
    store.save(alert("al-9"), T0)

    with engine.connect() as conn:
        row = conn.execute(sa.select(results_reports)).mappings().one()
    assert set(row["report"]) == {"sealed"}
    assert "card_fraud_suspected" not in str(row["report"])
    assert (row["report_type"], row["outcome"]) == ("card_fraud_suspected", "confirmed")
    got = store.get(ReportKind.ALERT, "al-9")
    assert got is not None and got.report.failed_actions == ["block_card"]  # type: ignore[union-attr]
    with pytest.raises(KeyRingError):
        ResultsReportStore(engine).get(ReportKind.ALERT, "al-9")


def test_the_list_filters_and_pages_in_completion_order(engine: Engine) -> None:
    store = ResultsReportStore(engine)
    for n in range(5):
        store.save(
            alert(f"al-{n}", T0 + timedelta(hours=n), "no_reply" if n == 3 else "confirmed"), T0
        )
    store.save(follow_up("fu-1"), T0)

    first = store.list(ReportKind.ALERT, limit=2)
    assert [s.report.subject_id for s in first.items] == ["al-0", "al-1"]
    assert first.next_cursor is not None
    rest = store.list(ReportKind.ALERT, limit=10, cursor=first.next_cursor)
    assert [s.report.subject_id for s in rest.items] == ["al-2", "al-3", "al-4"]
    assert rest.next_cursor is None
    ranged = store.list(
        ReportKind.ALERT,
        completed_from=T0 + timedelta(hours=1),
        completed_to=T0 + timedelta(hours=3),
    )
    assert [s.report.subject_id for s in ranged.items] == ["al-1", "al-2"]
    assert [
        s.report.subject_id for s in store.list(ReportKind.ALERT, outcome="no_reply").items
    ] == ["al-3"]
    assert store.list(ReportKind.ALERT, report_type="other").items == []
    assert [s.report.subject_id for s in store.list(ReportKind.FOLLOW_UP).items] == ["fu-1"]
    with pytest.raises(InvalidCursor):
        store.list(ReportKind.ALERT, cursor="not-a-cursor")


def test_purge_deletes_only_reports_completed_before_the_cutoff(engine: Engine) -> None:
    store = ResultsReportStore(engine)
    store.save(alert("al-old", T0 - timedelta(days=10)), T0)
    store.save(alert("al-new", T0), T0)

    assert store.purge(T0 - timedelta(days=1)) == 1
    assert store.purge(T0 - timedelta(days=1)) == 0
    assert [s.report.subject_id for s in store.list(ReportKind.ALERT).items] == ["al-new"]


def _fact(key: str, at: datetime) -> MetricEvent:
    return MetricEvent(
        key=key, metric=Metric.FOLLOW_UPS, labels={"outcome": "resolved", "reached": "no"},
        occurred_at=at,
    )  # fmt: skip


def test_metric_facts_go_by_whole_folded_days_and_the_figures_stay(engine: Engine) -> None:
    metrics = MetricsStore(engine)
    day = datetime(2025, 1, 10, tzinfo=UTC)
    metrics.record(
        [_fact("a", day + timedelta(hours=1)), _fact("b", day + timedelta(hours=20))], T0
    )
    metrics.aggregate([PeriodKind.DAY], T0)
    metrics.record([_fact("late", day - timedelta(hours=1))], T0)  # not folded yet

    # A cutoff inside the day keeps the whole day; the unfolded fact stays for the next pass.
    assert metrics.purge_events(day + timedelta(hours=12)) == 0
    assert metrics.purge_events(day + timedelta(days=1, hours=12)) == 2
    assert [key for key, *_ in metrics.events()] == ["late"]
    [series] = metrics.summary(PeriodKind.DAY, day, day + timedelta(days=1))
    assert [p.count for p in series.points] == [2]

"""The metrics store on SQLite and PostgreSQL: facts once per key, periods recomputed whole."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy.engine import Engine

from fiflow.domain.metrics import Metric, MetricEvent, PeriodKind
from fiflow.integrations.metrics_store import MetricsStore

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
KINDS = [PeriodKind.HOUR, PeriodKind.DAY]


def _reply(key: str, at: datetime, seconds: float) -> MetricEvent:
    return MetricEvent(
        key=key,
        metric=Metric.ALERT_REPLY_SECONDS,
        labels={"type": "card_fraud_suspected", "channel": "sms"},
        occurred_at=at,
        value=seconds,
    )


def _outcome(key: str, at: datetime, outcome: str) -> MetricEvent:
    return MetricEvent(
        key=key,
        metric=Metric.ALERT_OUTCOMES,
        labels={"type": "card_fraud_suspected", "outcome": outcome},
        occurred_at=at,
    )


def _points(store: MetricsStore, kind: PeriodKind, metric: str) -> dict[str, list[tuple]]:
    series = store.summary(kind, T0 - timedelta(days=2), T0 + timedelta(days=2))
    return {
        str(sorted(s.labels.items())): [(p.start, p.count, p.sum, p.p50, p.p95) for p in s.points]
        for s in series
        if s.metric == metric
    }


def test_a_fact_is_stored_once_per_key(engine: Engine) -> None:
    store = MetricsStore(engine)
    first = [_outcome("alert-a:alert_outcomes", T0, "confirmed"), _reply("alert-a:r", T0, 5.0)]
    assert [e.key for e in store.record(first, T0)] == ["alert-a:alert_outcomes", "alert-a:r"]
    # A retried activity sends the same facts (and one more): only the new one is new.
    again = [*first, _outcome("alert-b:alert_outcomes", T0, "contested")]
    assert [e.key for e in store.record(again, T0)] == ["alert-b:alert_outcomes"]
    assert [k for k, *_ in store.events()] == [
        "alert-a:alert_outcomes",
        "alert-a:r",
        "alert-b:alert_outcomes",
    ]


def test_aggregation_folds_exact_figures_and_a_rerun_changes_nothing(engine: Engine) -> None:
    store = MetricsStore(engine)
    store.record(
        [
            _reply("r1", T0 + timedelta(minutes=1), 30.0),
            _reply("r2", T0 + timedelta(minutes=2), 10.0),
            _reply("r3", T0 + timedelta(minutes=3), 20.0),
            _reply("r4", T0 + timedelta(hours=1, minutes=5), 100.0),
            _outcome("o1", T0, "confirmed"),
            _outcome("o2", T0 + timedelta(minutes=10), "confirmed"),
            _outcome("o3", T0 + timedelta(minutes=20), "contested"),
        ],
        T0,
    )
    result = store.aggregate(KINDS, T0 + timedelta(hours=2))
    assert result.events == 7
    hour2 = T0 + timedelta(hours=1)
    day = datetime(2026, 3, 2, tzinfo=UTC)
    replies = "[('channel', 'sms'), ('type', 'card_fraud_suspected')]"
    assert _points(store, PeriodKind.HOUR, "alert_reply_seconds") == {
        replies: [(T0, 3, 60.0, 20.0, 30.0), (hour2, 1, 100.0, 100.0, 100.0)]
    }
    assert _points(store, PeriodKind.DAY, "alert_reply_seconds") == {
        replies: [(day, 4, 160.0, 20.0, 100.0)]
    }
    assert _points(store, PeriodKind.DAY, "alert_outcomes") == {
        "[('outcome', 'confirmed'), ('type', 'card_fraud_suspected')]": [
            (day, 2, None, None, None)
        ],
        "[('outcome', 'contested'), ('type', 'card_fraud_suspected')]": [
            (day, 1, None, None, None)
        ],
    }
    before = _points(store, PeriodKind.HOUR, "alert_reply_seconds")
    # Nothing new: nothing folded. A full recompute replaces the figures with the same ones.
    assert store.aggregate(KINDS, T0 + timedelta(hours=3)).events == 0
    assert store.aggregate(KINDS, T0 + timedelta(hours=3), full=True).events == 7
    assert _points(store, PeriodKind.HOUR, "alert_reply_seconds") == before

    # A late fact of the first hour: that hour (and its day) are recomputed whole.
    store.record([_reply("r5", T0 + timedelta(minutes=30), 40.0)], T0 + timedelta(hours=3))
    assert store.aggregate(KINDS, T0 + timedelta(hours=4)).events == 1
    assert _points(store, PeriodKind.HOUR, "alert_reply_seconds") == {
        replies: [(T0, 4, 100.0, 20.0, 40.0), (hour2, 1, 100.0, 100.0, 100.0)]
    }
    assert _points(store, PeriodKind.DAY, "alert_reply_seconds") == {
        replies: [(day, 5, 200.0, 30.0, 100.0)]
    }


def test_the_summary_holds_only_periods_in_range(engine: Engine) -> None:
    store = MetricsStore(engine)
    store.record(
        [_outcome("o1", T0, "confirmed"), _outcome("o2", T0 + timedelta(days=1), "confirmed")],
        T0,
    )
    store.aggregate([PeriodKind.DAY], T0 + timedelta(days=1))
    day = datetime(2026, 3, 2, tzinfo=UTC)
    series = store.summary(PeriodKind.DAY, day, day + timedelta(days=1))
    assert [(s.metric, [(p.start, p.count) for p in s.points]) for s in series] == [
        ("alert_outcomes", [(day, 1)])
    ]
    assert store.summary(PeriodKind.HOUR, day, day + timedelta(days=1)) == []

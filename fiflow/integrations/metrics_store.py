"""The business metrics store: facts once per key, and the figures per period folded from them.

Both SQLite and PostgreSQL. Datetimes are stored in UTC (SQLite keeps no offset).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine

from fiflow.domain.metrics import (
    PERIOD_LENGTH,
    AggregationResult,
    MetricEvent,
    PeriodFigure,
    PeriodKind,
    fold,
    period_start,
    utc,
)
from fiflow.integrations.database import begin_write, metric_events, metric_periods

_e = metric_events.c
_p = metric_periods.c
# Events folded per transaction: a backlog (the schedule paused for a week) goes in steps.
AGGREGATE_BATCH = 20_000


@dataclass(frozen=True)
class SummarySeries:
    """One metric and label set, its points in period order."""

    metric: str
    labels: dict[str, str]
    points: list[PeriodFigure]


class MetricsStore:
    """Records facts idempotently and folds them into periods; safe across processes."""

    def __init__(self, engine: Engine) -> None:
        if engine.dialect.name not in ("postgresql", "sqlite"):
            raise ValueError(
                f"MetricsStore supports PostgreSQL and SQLite, not {engine.dialect.name}"
            )
        self._engine = engine

    def _insert(self, table: sa.Table) -> postgresql.Insert | sqlite.Insert:
        if self._engine.dialect.name == "postgresql":
            return postgresql.insert(table)
        return sqlite.insert(table)

    def record(self, events: list[MetricEvent], recorded_at: datetime) -> list[MetricEvent]:
        """Store the events whose key is new; returns those (a retry returns none)."""
        if not events:
            return []
        rows = [
            {
                "event_key": ev.key,
                "metric": ev.metric.value,
                "labels": ev.labels_key(),
                "value": ev.value,
                "occurred_at": utc(ev.occurred_at),
                "recorded_at": utc(recorded_at),
            }
            for ev in events
        ]
        # DO NOTHING on the key: a racing or repeated insert of the same fact stores nothing
        # and returns no row, so exactly one caller learns it was new.
        stmt = (
            self._insert(metric_events)
            .values(rows)
            .on_conflict_do_nothing(index_elements=[_e.event_key])
            .returning(_e.event_key)
        )
        with begin_write(self._engine) as conn:
            new = {row[0] for row in conn.execute(stmt)}
        return [ev for ev in events if ev.key in new]

    def aggregate(
        self, kinds: list[PeriodKind], now: datetime, full: bool = False
    ) -> AggregationResult:
        """Fold the events not yet folded (all of them when `full`) into their periods.

        Each touched period is recomputed whole from its events and replaces what was stored,
        so running a pass twice, or over events already folded, changes nothing.
        """
        events = periods = 0
        if full:
            with begin_write(self._engine) as conn:
                conn.execute(sa.update(metric_events).values(aggregated_at=None))
        while True:
            with begin_write(self._engine) as conn:
                pending = conn.execute(
                    sa.select(_e.id, _e.occurred_at)
                    .where(_e.aggregated_at.is_(None))
                    .order_by(_e.id)
                    .limit(AGGREGATE_BATCH)
                ).all()
                if not pending:
                    break
                for kind in kinds:
                    starts = {period_start(kind, at) for _, at in pending}
                    for start in sorted(starts):
                        periods += self._recompute(conn, kind, start, now)
                conn.execute(
                    sa.update(metric_events)
                    .where(_e.id.in_([row_id for row_id, _ in pending]))
                    .values(aggregated_at=utc(now))
                )
            events += len(pending)
            if len(pending) < AGGREGATE_BATCH:
                break
        return AggregationResult(events=events, periods=periods)

    def _recompute(
        self, conn: sa.Connection, kind: PeriodKind, start: datetime, now: datetime
    ) -> int:
        end = start + PERIOD_LENGTH[kind]
        rows = conn.execute(
            sa.select(_e.occurred_at, _e.metric, _e.labels, _e.value).where(
                _e.occurred_at >= start, _e.occurred_at < end
            )
        ).all()
        figures = fold(kind, ((r[0], r[1], r[2], r[3]) for r in rows))
        conn.execute(
            sa.delete(metric_periods).where(_p.kind == kind.value, _p.period_start == start)
        )
        if figures:
            conn.execute(
                sa.insert(metric_periods),
                [
                    {
                        "kind": f.kind.value,
                        "period_start": f.start,
                        "metric": f.metric,
                        "labels": f.labels,
                        "count": f.count,
                        "sum": f.sum,
                        "p50": f.p50,
                        "p95": f.p95,
                        "computed_at": utc(now),
                    }
                    for f in figures
                ],
            )
        return len(figures)

    def summary(self, kind: PeriodKind, start: datetime, end: datetime) -> list[SummarySeries]:
        """The stored figures of periods starting in [start, end), by metric and labels."""
        with self._engine.connect() as conn:
            rows = conn.execute(
                sa.select(_p.period_start, _p.metric, _p.labels, _p.count, _p.sum, _p.p50, _p.p95)
                .where(
                    _p.kind == kind.value,
                    _p.period_start >= utc(start),
                    _p.period_start < utc(end),
                )
                .order_by(_p.metric, _p.labels, _p.period_start)
            ).all()
        series: dict[tuple[str, str], list[PeriodFigure]] = {}
        for r in rows:
            figure = PeriodFigure(kind, utc(r[0]), r[1], r[2], r[3], r[4], r[5], r[6])
            series.setdefault((r[1], r[2]), []).append(figure)
        return [
            SummarySeries(metric=metric, labels=json.loads(labels), points=points)
            for (metric, labels), points in series.items()
        ]

    def purge_events(self, older_than: datetime) -> int:
        """Delete the folded facts of the whole days before the cutoff; how many went.

        The hour and day figures stay. Only whole UTC days go, and only facts already folded:
        a period left with part of its facts would have its figures replaced by those of the
        rest on the next pass over it (a `full` one); a period with none is never recomputed.
        """
        cutoff = period_start(PeriodKind.DAY, older_than)
        stmt = sa.delete(metric_events).where(
            _e.occurred_at < cutoff, _e.aggregated_at.is_not(None)
        )
        with begin_write(self._engine) as conn:
            return conn.execute(stmt).rowcount

    def events(
        self, metric: str | None = None
    ) -> list[tuple[str, str, dict[str, str], float | None]]:
        """Stored facts as (key, metric, labels, value), in recording order (tests, support)."""
        query = sa.select(_e.event_key, _e.metric, _e.labels, _e.value).order_by(_e.id)
        if metric is not None:
            query = query.where(_e.metric == metric)
        with self._engine.connect() as conn:
            return [(r[0], r[1], json.loads(r[2]), r[3]) for r in conn.execute(query)]


def now_utc() -> datetime:
    """The current instant in UTC."""
    return datetime.now(UTC)

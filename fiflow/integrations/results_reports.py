"""Results reports of finished alerts and follow-ups: written once at completion, then read.

Both SQLite and PostgreSQL. Like the credit report store: the first write of a flow wins, the
body is sealed with the payload key ring when one is given, and lists page by keyset.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from pydantic import TypeAdapter
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine, RowMapping

from fiflow.domain.results_reports import ReportKind, ResultsReport
from fiflow.integrations.codec import EncryptionCodec
from fiflow.integrations.database import begin_write, results_reports
from fiflow.integrations.reports import (
    DEFAULT_LIMIT,
    as_utc,
    aware_utc,
    check_limit,
    keyset_page,
    seal_body,
    unseal_body,
)

_t = results_reports.c
_REPORT: TypeAdapter[ResultsReport] = TypeAdapter(ResultsReport)


@dataclass(frozen=True)
class StoredResults:
    """One stored results report and when it was stored."""

    report: ResultsReport
    stored_at: datetime


@dataclass(frozen=True)
class ResultsPage:
    """One page in (completed_at, id) order, and where the next starts."""

    items: list[StoredResults]
    next_cursor: str | None


class ResultsReportStore:
    """Writes and reads results reports; safe for concurrent callers in many processes."""

    def __init__(self, engine: Engine, sealer: EncryptionCodec | None = None) -> None:
        if engine.dialect.name not in ("postgresql", "sqlite"):
            raise ValueError(
                f"ResultsReportStore supports PostgreSQL and SQLite, not {engine.dialect.name}"
            )
        self._engine = engine
        self._sealer = sealer

    def save(self, report: ResultsReport, stored_at: datetime) -> bool:
        """Store a report; False (the first kept unchanged) when its flow already has one."""
        values = {
            "kind": report.kind.value,
            "subject_id": report.subject_id,
            "workflow_id": report.workflow_id,
            "report_type": report.type,
            "outcome": report.outcome,
            "started_at": as_utc(report.started_at),
            "completed_at": as_utc(report.completed_at),
            "stored_at": as_utc(stored_at),
            "report": seal_body(self._sealer, report.model_dump(mode="json")),
        }
        insert = postgresql.insert if self._engine.dialect.name == "postgresql" else sqlite.insert
        # DO NOTHING rather than check-then-insert: of racing writers exactly one sees a row.
        stmt = (
            insert(results_reports)
            .values(**values)
            .on_conflict_do_nothing(index_elements=[_t.kind, _t.subject_id])
            .returning(_t.subject_id)
        )
        with begin_write(self._engine) as conn:
            return conn.execute(stmt).first() is not None

    def get(self, kind: ReportKind, subject_id: str) -> StoredResults | None:
        """The report of one alert or follow-up, or None if none was stored."""
        stmt = sa.select(results_reports).where(_t.kind == kind.value, _t.subject_id == subject_id)
        with self._engine.connect() as conn:
            row = conn.execute(stmt).mappings().first()
        return None if row is None else self._from_row(row)

    def list(
        self,
        kind: ReportKind,
        *,
        completed_from: datetime | None = None,
        completed_to: datetime | None = None,
        outcome: str | None = None,
        report_type: str | None = None,
        limit: int = DEFAULT_LIMIT,
        cursor: str | None = None,
    ) -> ResultsPage:
        """Reports of one kind completed in [from, to), oldest first, a page at a time."""
        check_limit(limit)
        conditions: list[sa.ColumnElement[bool]] = [_t.kind == kind.value]
        if completed_from is not None:
            conditions.append(_t.completed_at >= aware_utc(completed_from, "completed_from"))
        if completed_to is not None:
            conditions.append(_t.completed_at < aware_utc(completed_to, "completed_to"))
        if outcome is not None:
            conditions.append(_t.outcome == outcome)
        if report_type is not None:
            conditions.append(_t.report_type == report_type)
        rows, next_cursor = keyset_page(
            self._engine,
            results_reports,
            conditions,
            at=_t.completed_at,
            key=_t.subject_id,
            limit=limit,
            cursor=cursor,
            max_id=128,
        )
        return ResultsPage(items=[self._from_row(r) for r in rows], next_cursor=next_cursor)

    def purge(self, older_than: datetime) -> int:
        """Delete the reports of flows completed before the cutoff; how many went."""
        stmt = sa.delete(results_reports).where(_t.completed_at < as_utc(older_than))
        with begin_write(self._engine) as conn:
            return conn.execute(stmt).rowcount

    def _from_row(self, row: RowMapping) -> StoredResults:
        body = unseal_body(self._sealer, row["report"])
        return StoredResults(
            report=_REPORT.validate_python(body), stored_at=as_utc(row["stored_at"])
        )

"""Batch screening's records: each batch file, its rejected rows, its matches and the alerts
it starts (migration 0009).

Every write is idempotent, so a retried activity (a worker crashed after the commit, before
Temporal heard) changes nothing the second time: a chunk's matches and planned alerts are
stored in one transaction together with the chunk's row, and an alert's `started_at` is what
a resumed alert step skips. Rejected rows keep the line number and the reasons (field names
and problems, never values). The planned alert requests (amounts, merchants, card digits) are
sealed with the payload key ring when one is given, as the credit reports are.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine, RowMapping

from fiflow.integrations.codec import EncryptionCodec
from fiflow.integrations.database import begin_write, metadata

_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")

# One row per file (its checksum names it). Counts are filled in as the run goes.
feed_batches = sa.Table(
    "feed_batches",
    metadata,
    sa.Column("batch_id", sa.String(40), primary_key=True),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("source", sa.String(32), nullable=False),
    sa.Column("format", sa.String(16), nullable=False),
    sa.Column("size_bytes", sa.BigInteger, nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("error", sa.String(256), nullable=True),
    sa.Column("rules_version", sa.String(64), nullable=True),
    sa.Column("sources_version", sa.String(64), nullable=True),
    # The conditions and the source mapping the run loaded, so every chunk screens alike.
    sa.Column("snapshot", _JSON, nullable=True),
    sa.Column("chunks_total", sa.Integer, nullable=True),
    sa.Column("rows_read", sa.Integer, nullable=False, server_default="0"),
    sa.Column("rows_rejected", sa.Integer, nullable=False, server_default="0"),
    sa.Column("rows_matched", sa.Integer, nullable=False, server_default="0"),
    sa.Column("alerts_planned", sa.Integer, nullable=False, server_default="0"),
    sa.Column("alerts_started", sa.Integer, nullable=False, server_default="0"),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

feed_batch_rejects = sa.Table(
    "feed_batch_rejects",
    metadata,
    sa.Column("batch_id", sa.String(40), primary_key=True),
    sa.Column("line", sa.Integer, primary_key=True),
    sa.Column("reason", sa.String(512), nullable=False),
)

feed_batch_chunks = sa.Table(
    "feed_batch_chunks",
    metadata,
    sa.Column("batch_id", sa.String(40), primary_key=True),
    sa.Column("chunk", sa.Integer, primary_key=True),
    sa.Column("rows", sa.Integer, nullable=False),
    sa.Column("matched", sa.Integer, nullable=False),
    sa.Column("alerts", sa.Integer, nullable=False),
    sa.Column("done_at", sa.DateTime(timezone=True), nullable=False),
)

feed_batch_matches = sa.Table(
    "feed_batch_matches",
    metadata,
    sa.Column("batch_id", sa.String(40), primary_key=True),
    sa.Column("transaction_id", sa.String(64), primary_key=True),
    sa.Column("chunk", sa.Integer, nullable=False),
    sa.Column("customer_id", sa.String(64), nullable=False),
    # The condition ids met, comma-separated, in rule-file order.
    sa.Column("rule_ids", sa.String(1024), nullable=False),
    # The alert that tells about it (feed_batch_alerts.alert_key): its started flag is there.
    sa.Column("alert_key", sa.String(160), nullable=True),
)

feed_batch_alerts = sa.Table(
    "feed_batch_alerts",
    metadata,
    sa.Column("batch_id", sa.String(40), primary_key=True),
    # The alert's source_event_id: a transaction id, or a digest's batch-and-customer key.
    sa.Column("alert_key", sa.String(160), primary_key=True),
    sa.Column("chunk", sa.Integer, nullable=False),
    sa.Column("customer_id", sa.String(64), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),  # fraud_alert | notice
    sa.Column("item_count", sa.Integer, nullable=False),
    sa.Column("request", _JSON, nullable=False),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
    sa.Index("ix_feed_batch_alerts_batch_id_started_at", "batch_id", "started_at"),
)


class BatchState(StrEnum):
    """Where a batch is."""

    RECEIVED = "received"
    SCREENING = "screening"
    ALERTING = "alerting"
    COMPLETED = "completed"
    FAILED = "failed"  # the file as a whole was unreadable; it stays in the store

    @property
    def finished(self) -> bool:
        """No more work will happen."""
        return self in (BatchState.COMPLETED, BatchState.FAILED)


class AlertKind(StrEnum):
    """What a planned alert starts."""

    FRAUD_ALERT = "fraud_alert"
    NOTICE = "notice"


class BatchRecord(BaseModel):
    """A batch as stored, with its live progress."""

    model_config = ConfigDict(frozen=True)

    batch_id: str
    sha256: str
    source: str
    format: str
    size_bytes: int
    state: BatchState
    error: str | None = None
    rules_version: str | None = None
    sources_version: str | None = None
    chunks_total: int | None = None
    chunks_done: int = 0
    rows_read: int = 0
    rows_rejected: int = 0
    rows_matched: int = 0
    alerts_planned: int = 0
    alerts_started: int = 0
    created_at: datetime
    updated_at: datetime


class Reject(BaseModel):
    """A rejected row: where it is in the file and why."""

    line: int
    reason: str


class MatchRow(BaseModel):
    """A matched transaction of a chunk."""

    transaction_id: str
    customer_id: str
    rule_ids: list[str]
    alert_key: str | None


class PlannedAlert(BaseModel):
    """An alert a chunk planned: what it starts, and the request to start it with."""

    alert_key: str
    customer_id: str
    kind: AlertKind
    items: int
    request: dict[str, Any]


class ChunkCounts(BaseModel):
    """What one chunk found."""

    rows: int
    matched: int
    alerts: int


class BatchStore:
    """The batch records; safe for concurrent callers in many processes."""

    def __init__(self, engine: Engine, sealer: EncryptionCodec | None = None) -> None:
        if engine.dialect.name not in ("postgresql", "sqlite"):
            raise ValueError(
                f"BatchStore supports PostgreSQL and SQLite, not {engine.dialect.name}"
            )
        self._engine = engine
        self._sealer = sealer

    def _insert(self, table: sa.Table) -> Any:
        if self._engine.dialect.name == "postgresql":
            return postgresql.insert(table)
        return sqlite.insert(table)

    # --- the batch ------------------------------------------------------------------------

    def register(
        self, batch_id: str, *, sha256: str, source: str, fmt: str, size: int, at: datetime
    ) -> tuple[BatchRecord, bool]:
        """Record a received file; (the batch, whether it is new). The same file: the first."""
        at = _utc(at)
        stmt = (
            self._insert(feed_batches)
            .values(
                batch_id=batch_id,
                sha256=sha256,
                source=source,
                format=fmt,
                size_bytes=size,
                state=BatchState.RECEIVED.value,
                created_at=at,
                updated_at=at,
            )
            .on_conflict_do_nothing(index_elements=["batch_id"])
            .returning(feed_batches.c.batch_id)
        )
        with begin_write(self._engine) as conn:
            created = conn.execute(stmt).first() is not None
        record = self.get(batch_id)
        assert record is not None
        return record, created

    def get(self, batch_id: str) -> BatchRecord | None:
        """The batch and its progress, or None."""
        b = feed_batches.c
        chunks = (
            sa.select(sa.func.count())
            .select_from(feed_batch_chunks)
            .where(feed_batch_chunks.c.batch_id == b.batch_id)
            .scalar_subquery()
        )
        started = (
            sa.select(sa.func.count())
            .select_from(feed_batch_alerts)
            .where(
                feed_batch_alerts.c.batch_id == b.batch_id,
                feed_batch_alerts.c.started_at.is_not(None),
            )
            .scalar_subquery()
        )
        query = sa.select(
            *[feed_batches.c[k] for k in _RECORD_COLUMNS],
            chunks.label("chunks_done"),
            started.label("live_started"),
        ).where(b.batch_id == batch_id)
        with self._engine.connect() as conn:
            row = conn.execute(query).mappings().first()
        if row is None:
            return None
        return _record(row)

    def snapshot(self, batch_id: str) -> dict[str, Any]:
        """The rules and mapping the batch's run loaded."""
        with self._engine.connect() as conn:
            value = conn.scalar(
                sa.select(feed_batches.c.snapshot).where(feed_batches.c.batch_id == batch_id)
            )
        if value is None:
            raise LookupError(f"batch {batch_id} has no snapshot yet")
        return dict(value)

    def begin_screening(
        self,
        batch_id: str,
        *,
        snapshot: dict[str, Any],
        rules_version: str,
        sources_version: str,
        rows_read: int,
        rejects: Sequence[Reject],
        chunks: int,
        at: datetime,
    ) -> None:
        """Store the rejected rows and the plan (all of it again on a retry)."""
        with begin_write(self._engine) as conn:
            conn.execute(
                sa.delete(feed_batch_rejects).where(feed_batch_rejects.c.batch_id == batch_id)
            )
            if rejects:
                conn.execute(
                    feed_batch_rejects.insert(),
                    [
                        {"batch_id": batch_id, "line": r.line, "reason": r.reason[:512]}
                        for r in rejects
                    ],
                )
            conn.execute(
                sa.update(feed_batches)
                .where(feed_batches.c.batch_id == batch_id)
                .values(
                    state=BatchState.SCREENING.value,
                    snapshot=snapshot,
                    rules_version=rules_version,
                    sources_version=sources_version,
                    rows_read=rows_read,
                    rows_rejected=len(rejects),
                    chunks_total=chunks,
                    updated_at=_utc(at),
                )
            )

    def fail(self, batch_id: str, error: str, at: datetime) -> None:
        """The file cannot be screened at all (it stays in the store)."""
        with begin_write(self._engine) as conn:
            conn.execute(
                sa.update(feed_batches)
                .where(feed_batches.c.batch_id == batch_id)
                .values(state=BatchState.FAILED.value, error=error[:256], updated_at=_utc(at))
            )

    def rejects(self, batch_id: str, limit: int = 100) -> list[Reject]:
        """The rejected rows, by line."""
        r = feed_batch_rejects.c
        query = (
            sa.select(r.line, r.reason).where(r.batch_id == batch_id).order_by(r.line).limit(limit)
        )
        with self._engine.connect() as conn:
            return [Reject(line=row.line, reason=row.reason) for row in conn.execute(query)]

    # --- chunks ---------------------------------------------------------------------------

    def save_chunk(
        self,
        batch_id: str,
        chunk: int,
        *,
        rows: int,
        matches: Sequence[MatchRow],
        alerts: Sequence[PlannedAlert],
        at: datetime,
    ) -> ChunkCounts:
        """Store a chunk's matches and planned alerts once; a repeat returns the first counts."""
        c = feed_batch_chunks.c
        with begin_write(self._engine) as conn:
            done = conn.execute(
                sa.select(c.rows, c.matched, c.alerts).where(
                    c.batch_id == batch_id, c.chunk == chunk
                )
            ).first()
            if done is not None:
                return ChunkCounts(rows=done.rows, matched=done.matched, alerts=done.alerts)
            if matches:
                conn.execute(
                    self._insert(feed_batch_matches).on_conflict_do_nothing(),
                    [
                        {
                            "batch_id": batch_id,
                            "transaction_id": m.transaction_id,
                            "chunk": chunk,
                            "customer_id": m.customer_id,
                            "rule_ids": ",".join(m.rule_ids)[:1024],
                            "alert_key": m.alert_key,
                        }
                        for m in matches
                    ],
                )
            if alerts:
                conn.execute(
                    self._insert(feed_batch_alerts).on_conflict_do_nothing(),
                    [
                        {
                            "batch_id": batch_id,
                            "alert_key": a.alert_key,
                            "chunk": chunk,
                            "customer_id": a.customer_id,
                            "kind": a.kind.value,
                            "item_count": a.items,
                            "request": self._seal(a.request),
                            "started_at": None,
                        }
                        for a in alerts
                    ],
                )
            counts = ChunkCounts(rows=rows, matched=len(matches), alerts=len(alerts))
            conn.execute(
                feed_batch_chunks.insert().values(
                    batch_id=batch_id, chunk=chunk, done_at=_utc(at), **counts.model_dump()
                )
            )
        return counts

    def matches(self, batch_id: str) -> list[MatchRow]:
        """Every matched transaction of the batch."""
        m = feed_batch_matches.c
        query = sa.select(m.transaction_id, m.customer_id, m.rule_ids, m.alert_key).where(
            m.batch_id == batch_id
        )
        with self._engine.connect() as conn:
            return [
                MatchRow(
                    transaction_id=r.transaction_id,
                    customer_id=r.customer_id,
                    rule_ids=r.rule_ids.split(","),
                    alert_key=r.alert_key,
                )
                for r in conn.execute(query.order_by(m.transaction_id))
            ]

    def begin_alerting(self, batch_id: str, at: datetime) -> BatchRecord:
        """Every chunk is screened: total the matches and planned alerts."""
        c = feed_batch_chunks.c
        totals = sa.select(
            sa.func.coalesce(sa.func.sum(c.matched), 0), sa.func.coalesce(sa.func.sum(c.alerts), 0)
        ).where(c.batch_id == batch_id)
        with begin_write(self._engine) as conn:
            matched, planned = conn.execute(totals).one()
            conn.execute(
                sa.update(feed_batches)
                .where(feed_batches.c.batch_id == batch_id)
                .values(
                    state=BatchState.ALERTING.value,
                    rows_matched=int(matched),
                    alerts_planned=int(planned),
                    updated_at=_utc(at),
                )
            )
        record = self.get(batch_id)
        assert record is not None
        return record

    # --- alerts ---------------------------------------------------------------------------

    def pending_alerts(self, batch_id: str, limit: int) -> list[PlannedAlert]:
        """Planned alerts not started yet, in a stable order."""
        a = feed_batch_alerts.c
        query = (
            sa.select(a.alert_key, a.customer_id, a.kind, a.item_count, a.request)
            .where(a.batch_id == batch_id, a.started_at.is_(None))
            .order_by(a.alert_key)
            .limit(limit)
        )
        with self._engine.connect() as conn:
            rows = conn.execute(query).all()
        return [
            PlannedAlert(
                alert_key=r.alert_key,
                customer_id=r.customer_id,
                kind=AlertKind(r.kind),
                items=r.item_count,
                request=self._unseal(r.request),
            )
            for r in rows
        ]

    def count_pending(self, batch_id: str) -> int:
        """How many planned alerts are not started yet."""
        a = feed_batch_alerts.c
        query = (
            sa.select(sa.func.count())
            .select_from(feed_batch_alerts)
            .where(a.batch_id == batch_id, a.started_at.is_(None))
        )
        with self._engine.connect() as conn:
            return int(conn.scalar(query) or 0)

    def mark_started(self, batch_id: str, alert_keys: Sequence[str], at: datetime) -> None:
        """These alerts are started (a resumed alert step skips them)."""
        if not alert_keys:
            return
        a = feed_batch_alerts.c
        with begin_write(self._engine) as conn:
            conn.execute(
                sa.update(feed_batch_alerts)
                .where(
                    a.batch_id == batch_id,
                    a.alert_key.in_(list(alert_keys)),
                    a.started_at.is_(None),
                )
                .values(started_at=_utc(at))
            )

    def finish(self, batch_id: str, at: datetime) -> BatchRecord:
        """The batch is done: its counts are final."""
        a = feed_batch_alerts.c
        started = (
            sa.select(sa.func.count())
            .select_from(feed_batch_alerts)
            .where(a.batch_id == batch_id, a.started_at.is_not(None))
            .scalar_subquery()
        )
        with begin_write(self._engine) as conn:
            conn.execute(
                sa.update(feed_batches)
                .where(feed_batches.c.batch_id == batch_id)
                .values(
                    state=BatchState.COMPLETED.value, alerts_started=started, updated_at=_utc(at)
                )
            )
        record = self.get(batch_id)
        assert record is not None
        return record

    def _seal(self, request: dict[str, Any]) -> dict[str, Any]:
        if self._sealer is None:
            return {"plain": request}
        return {"sealed": self._sealer.seal(json.dumps(request).encode())}

    def _unseal(self, stored: dict[str, Any]) -> dict[str, Any]:
        if "plain" in stored:
            return dict(stored["plain"])
        if self._sealer is None:
            raise ValueError("a sealed alert request needs the payload key ring to read")
        value: dict[str, Any] = json.loads(self._sealer.unseal(stored["sealed"]))
        return value


_RECORD_COLUMNS = (
    "batch_id",
    "sha256",
    "source",
    "format",
    "size_bytes",
    "state",
    "error",
    "rules_version",
    "sources_version",
    "chunks_total",
    "rows_read",
    "rows_rejected",
    "rows_matched",
    "alerts_planned",
    "alerts_started",
    "created_at",
    "updated_at",
)


def _record(row: RowMapping) -> BatchRecord:
    values = {k: row[k] for k in _RECORD_COLUMNS}
    values["chunks_done"] = int(row["chunks_done"] or 0)
    # While alerting, the started count is live; once finished, the stored one is final.
    values["alerts_started"] = max(int(row["alerts_started"]), int(row["live_started"] or 0))
    for key in ("created_at", "updated_at"):
        value = values[key]
        values[key] = value.replace(tzinfo=UTC) if value.tzinfo is None else value
    return BatchRecord.model_validate(values)


def _utc(value: datetime) -> datetime:
    # SQLite keeps no offset, so every stored time is UTC.
    if value.tzinfo is None:
        raise ValueError("times must be timezone-aware")
    return value.astimezone(UTC)

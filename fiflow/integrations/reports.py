"""Credit-application result reports: written once when an application finishes, then read.

Also what every report store shares (the results reports of alerts and follow-ups use it too):
keyset paging with opaque cursors, sealing bodies with the payload key ring, UTC on SQLite.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine, RowMapping

from fiflow.integrations.codec import EncryptionCodec, KeyRingError
from fiflow.integrations.database import begin_write, credit_reports

_t = credit_reports.c

DEFAULT_LIMIT = 100
MAX_LIMIT = 500

# A real cursor is under 200 characters; anything far longer is not one of ours and is
# refused before it is decoded.
_MAX_CURSOR_CHARS = 512

_DATETIME_FIELDS = ("submitted_at", "completed_at", "stored_at")
# The one key of an encrypted report body: {"sealed": {"key_id": ..., "sealed": ...}}.
SEALED = "sealed"


class InvalidCursor(ValueError):
    """A paging cursor that this store did not produce (or that was altered)."""


class StoredReport(BaseModel):
    """One credit application's result report, as stored: immutable once written."""

    model_config = ConfigDict(frozen=True)

    # Lengths mirror the columns: PostgreSQL enforces them and SQLite would not, so both
    # dialects refuse the same values here, before the database is reached.
    application_id: str = Field(min_length=1, max_length=64)
    product: str = Field(min_length=1, max_length=32)
    decision: str = Field(min_length=1, max_length=16)
    decided_by: str | None = Field(default=None, max_length=64)
    rule_set_version: str = Field(min_length=1, max_length=64)
    submitted_at: AwareDatetime
    completed_at: AwareDatetime
    stored_at: AwareDatetime
    report: dict[str, Any]

    @field_validator(*_DATETIME_FIELDS)
    @classmethod
    def _in_utc(cls, value: datetime) -> datetime:
        # SQLite keeps no offset, so only UTC values store and compare the same on both.
        return value.astimezone(UTC)

    @field_validator("report")
    @classmethod
    def _json_compatible(cls, value: dict[str, Any]) -> dict[str, Any]:
        # Fail at construction rather than deep inside an INSERT; NaN is refused because
        # PostgreSQL's JSONB rejects it while SQLite would store it as invalid JSON.
        try:
            json.dumps(value, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"report must be plain JSON data: {exc}") from exc
        return value


class ReportPage(BaseModel):
    """One page of reports in (completed_at, application_id) order, and where the next starts."""

    items: list[StoredReport]
    next_cursor: str | None = None


class CreditReportStore:
    """Writes and reads credit reports; safe for concurrent callers in many processes.

    With a sealer (the payload key ring) the report body is encrypted at rest: it holds the
    applicant's amounts, income and results, which must not sit in the database in clear any
    more than in Temporal's history. The columns the listing filters on stay clear.
    """

    def __init__(self, engine: Engine, sealer: EncryptionCodec | None = None) -> None:
        if engine.dialect.name not in ("postgresql", "sqlite"):
            raise ValueError(
                f"CreditReportStore supports PostgreSQL and SQLite, not {engine.dialect.name}"
            )
        self._engine = engine
        self._sealer = sealer

    def save(self, row: StoredReport) -> bool:
        """Store a report; False (and the first report kept unchanged) if one already exists."""
        values = row.model_dump()
        values["report"] = seal_body(self._sealer, values["report"])
        # DO NOTHING rather than check-then-insert: a racing insert of the same id waits for
        # the other's commit and then returns no row, so exactly one caller sees True.
        if self._engine.dialect.name == "postgresql":
            stmt: sa.Insert = (
                postgresql.insert(credit_reports)
                .values(**values)
                .on_conflict_do_nothing(index_elements=[_t.application_id])
                .returning(_t.application_id)
            )
        else:
            stmt = (
                sqlite.insert(credit_reports)
                .values(**values)
                .on_conflict_do_nothing(index_elements=[_t.application_id])
                .returning(_t.application_id)
            )
        with begin_write(self._engine) as conn:
            return conn.execute(stmt).first() is not None

    def get(self, application_id: str) -> StoredReport | None:
        """The report of one application, or None if none was stored."""
        stmt = sa.select(credit_reports).where(_t.application_id == application_id)
        with self._engine.connect() as conn:
            row = conn.execute(stmt).mappings().first()
        return None if row is None else self._from_row(row)

    def list(
        self,
        *,
        completed_from: datetime | None = None,
        completed_to: datetime | None = None,
        decision: str | None = None,
        product: str | None = None,
        limit: int = DEFAULT_LIMIT,
        cursor: str | None = None,
    ) -> ReportPage:
        """Reports completed in [completed_from, completed_to), oldest first, one page at a time."""
        check_limit(limit)
        conditions: list[sa.ColumnElement[bool]] = []
        if completed_from is not None:
            conditions.append(_t.completed_at >= aware_utc(completed_from, "completed_from"))
        if completed_to is not None:
            conditions.append(_t.completed_at < aware_utc(completed_to, "completed_to"))
        if decision is not None:
            conditions.append(_t.decision == decision)
        if product is not None:
            conditions.append(_t.product == product)
        rows, next_cursor = keyset_page(
            self._engine,
            credit_reports,
            conditions,
            at=_t.completed_at,
            key=_t.application_id,
            limit=limit,
            cursor=cursor,
            max_id=64,
        )
        return ReportPage(items=[self._from_row(r) for r in rows], next_cursor=next_cursor)

    def _from_row(self, row: RowMapping) -> StoredReport:
        values = dict(row)
        for name in _DATETIME_FIELDS:
            values[name] = as_utc(values[name])
        values["report"] = unseal_body(self._sealer, values["report"])
        return StoredReport.model_validate(values)


# --- shared by the report stores (credit here, results in results_reports.py) ----------------


def check_limit(limit: int) -> None:
    """ValueError unless `limit` is a page size a store serves (1 to MAX_LIMIT)."""
    if isinstance(limit, bool) or not 1 <= limit <= MAX_LIMIT:
        raise ValueError(f"limit must be between 1 and {MAX_LIMIT}, not {limit!r}")


def aware_utc(value: datetime, name: str) -> datetime:
    """A filter's instant in UTC; ValueError for a naive one (its zone would be a guess)."""
    if value.tzinfo is None:
        raise ValueError(f"{name} must be timezone-aware, not {value.isoformat()}")
    return value.astimezone(UTC)


def seal_body(sealer: EncryptionCodec | None, body: Any) -> Any:
    """A report body as stored: sealed with the key ring when one is configured."""
    if sealer is None:
        return body
    text = json.dumps(body, separators=(",", ":")).encode()
    return {SEALED: sealer.seal(text)}


def unseal_body(sealer: EncryptionCodec | None, body: Any) -> Any:
    """A stored report body in clear (KeyRingError if it is sealed and no key ring is set)."""
    if isinstance(body, dict) and set(body) == {SEALED}:
        if sealer is None:
            raise KeyRingError("this report is encrypted: configure the payload key ring")
        return json.loads(sealer.unseal(body[SEALED]))
    return body


def keyset_page(
    engine: Engine,
    table: sa.Table,
    conditions: list[sa.ColumnElement[bool]],
    *,
    at: sa.Column[Any],
    key: sa.Column[Any],
    limit: int,
    cursor: str | None,
    max_id: int,
) -> tuple[list[RowMapping], str | None]:
    """The rows matching `conditions` after `cursor`, in (at, key) order, and the next cursor.

    Keyset rather than OFFSET: rows inserted before the cursor position neither shift nor
    repeat the following pages.
    """
    conditions = list(conditions)
    if cursor is not None:
        after_at, after_id = decode_cursor(cursor, max_id=max_id)
        # The plain >= lets the index bound the scan, which the OR alone would not.
        conditions.append(at >= after_at)
        conditions.append(sa.or_(at > after_at, key > after_id))
    stmt = (
        sa.select(table)
        .where(*conditions)
        .order_by(at, key)
        # One row more than asked tells whether another page exists.
        .limit(limit + 1)
    )
    with engine.connect() as conn:
        rows = conn.execute(stmt).mappings().all()
    if len(rows) <= limit:
        return list(rows), None
    last = rows[limit - 1]
    return list(rows[:limit]), encode_cursor(as_utc(last[at.name]), last[key.name])


def as_utc(value: datetime) -> datetime:
    """A stored instant in UTC: SQLite keeps no offset, and what the stores write there is UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def encode_cursor(at: datetime, object_id: str) -> str:
    """A keyset position (an instant and an ID) as an opaque URL-safe cursor."""
    raw = json.dumps([at.isoformat(), object_id], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode("ascii").rstrip("=")


def decode_cursor(cursor: str, max_id: int) -> tuple[datetime, str]:
    """The position `encode_cursor` wrote (InvalidCursor for anything else)."""
    try:
        if len(cursor) > _MAX_CURSOR_CHARS:
            raise ValueError(f"longer than {_MAX_CURSOR_CHARS} characters")
        padded = cursor + "=" * (-len(cursor) % 4)
        value = json.loads(base64.b64decode(padded, altchars=b"-_", validate=True))
        if not (
            isinstance(value, list) and len(value) == 2 and all(isinstance(v, str) for v in value)
        ):
            raise ValueError("not a position")
        completed_at = datetime.fromisoformat(value[0])
        object_id = value[1]
        if completed_at.tzinfo is None:
            raise ValueError("position has no timezone")
        if not 1 <= len(object_id) <= max_id:
            raise ValueError("position has no valid id")
    except ValueError as exc:  # also binascii.Error, JSONDecodeError, UnicodeDecodeError
        raise InvalidCursor(
            f"invalid cursor ({exc}): pass next_cursor from a previous page unchanged"
        ) from exc
    return completed_at.astimezone(UTC), object_id

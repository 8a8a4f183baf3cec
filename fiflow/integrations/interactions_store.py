"""Interaction context: each customer interaction, the events accepted for it, and history."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, Literal

import sqlalchemy as sa
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine, RowMapping

from fiflow.integrations.database import (
    begin_write,
    follow_ups,
    interaction_events,
    interactions,
)

_i = interactions.c
_f = follow_ups.c
_e = interaction_events.c

DEFAULT_LIMIT = 50
MAX_LIMIT = 500

_EVENT_DATETIMES = ("occurred_at", "accepted_at")
_INTERACTION_DATETIMES = ("started_at", "ended_at", "updated_at")

# Stored values that a later upsert giving None must leave alone.
_KEPT_WHEN_NONE = ("customer_id", "reason", "outcome", "ended_at", "summary")


def _check_json(value: dict[str, Any] | None, name: str) -> None:
    # Fail at construction rather than deep inside an INSERT; NaN is refused because
    # PostgreSQL's JSONB rejects it while SQLite would store it as invalid JSON.
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be plain JSON data: {exc}") from exc


class StoredEvent(BaseModel):
    """One event accepted for an interaction; `seq` is assigned by the store on insert."""

    model_config = ConfigDict(frozen=True)

    # Lengths mirror the columns: PostgreSQL enforces them and SQLite would not, so both
    # dialects refuse the same values here, before the database is reached.
    seq: int | None = None
    event_id: str = Field(min_length=1, max_length=128)
    interaction_id: str = Field(min_length=1, max_length=128)
    customer_id: str | None = Field(default=None, max_length=128)
    channel: str | None = Field(default=None, max_length=16)
    type: str = Field(min_length=1, max_length=64)
    occurred_at: AwareDatetime
    accepted_at: AwareDatetime
    late: bool = False
    attributes: dict[str, Any] = Field(default_factory=dict)

    @field_validator(*_EVENT_DATETIMES)
    @classmethod
    def _in_utc(cls, value: datetime) -> datetime:
        # SQLite keeps no offset, so only UTC values store and compare the same on both.
        return value.astimezone(UTC)

    @field_validator("attributes")
    @classmethod
    def _json_compatible(cls, value: dict[str, Any]) -> dict[str, Any]:
        _check_json(value, "attributes")
        return value


class InteractionRecord(BaseModel):
    """One customer interaction as stored: who, which channel, why, and how it ended."""

    model_config = ConfigDict(frozen=True)

    interaction_id: str = Field(min_length=1, max_length=128)
    customer_id: str | None = Field(default=None, max_length=128)
    channel: str = Field(min_length=1, max_length=16)
    status: Literal["open", "closed"]
    reason: str | None = Field(default=None, max_length=64)
    outcome: str | None = Field(default=None, max_length=64)
    started_at: AwareDatetime
    ended_at: AwareDatetime | None = None
    updated_at: AwareDatetime
    summary: dict[str, Any] | None = None

    @field_validator(*_INTERACTION_DATETIMES)
    @classmethod
    def _in_utc(cls, value: datetime | None) -> datetime | None:
        # SQLite keeps no offset, so only UTC values store and compare the same on both.
        return None if value is None else value.astimezone(UTC)

    @field_validator("summary")
    @classmethod
    def _json_compatible(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        _check_json(value, "summary")
        return value


class InteractionStore:
    """Writes and reads interaction context; safe for concurrent callers in many processes."""

    def __init__(self, engine: Engine) -> None:
        if engine.dialect.name not in ("postgresql", "sqlite"):
            raise ValueError(
                f"InteractionStore supports PostgreSQL and SQLite, not {engine.dialect.name}"
            )
        self._engine = engine

    def _insert(self, table: sa.Table) -> postgresql.Insert | sqlite.Insert:
        if self._engine.dialect.name == "postgresql":
            return postgresql.insert(table)
        return sqlite.insert(table)

    def record_event(self, event: StoredEvent) -> bool:
        """Store an event; False (and the first copy kept unchanged) if its event_id exists."""
        # seq is the acceptance order, so only the database may assign it.
        values = event.model_dump(exclude={"seq"})
        # DO NOTHING rather than check-then-insert: a racing insert of the same id waits for
        # the other's commit and then returns no row, so exactly one caller sees True.
        stmt = (
            self._insert(interaction_events)
            .values(**values)
            .on_conflict_do_nothing(index_elements=[_e.event_id])
            .returning(_e.seq)
        )
        with begin_write(self._engine) as conn:
            return conn.execute(stmt).first() is not None

    def event_count(self, interaction_id: str) -> int:
        """How many events one interaction has taken (late ones included)."""
        stmt = (
            sa.select(sa.func.count())
            .select_from(interaction_events)
            .where(_e.interaction_id == interaction_id)
        )
        with self._engine.connect() as conn:
            return int(conn.scalar(stmt) or 0)

    def events(self, interaction_id: str) -> list[StoredEvent]:
        """The events of one interaction in the order they were accepted."""
        stmt = (
            sa.select(interaction_events)
            .where(_e.interaction_id == interaction_id)
            .order_by(_e.seq)
        )
        with self._engine.connect() as conn:
            rows = conn.execute(stmt).mappings().all()
        return [_event_from_row(r) for r in rows]

    def purge_events(self, older_than: datetime) -> int:
        """Delete events accepted before `older_than`; how many went.

        The interactions themselves (customer, reason, outcome) stay: repeat-caller rules read
        them, and they hold no event attributes.
        """
        if older_than.tzinfo is None:
            raise ValueError(f"older_than must be timezone-aware, not {older_than.isoformat()}")
        stmt = sa.delete(interaction_events).where(_e.accepted_at < older_than.astimezone(UTC))
        with begin_write(self._engine) as conn:
            return conn.execute(stmt).rowcount

    def upsert_interaction(self, record: InteractionRecord) -> None:
        """Insert or update one interaction; None keeps stored values, started_at the earliest."""
        values = record.model_dump()
        insert = self._insert(interactions).values(**values)
        new = insert.excluded
        set_: dict[str, Any] = {
            "channel": new.channel,
            "status": new.status,
            "updated_at": new.updated_at,
            # Writers that saw the interaction from a later point (a late event, a retry)
            # must not move its start forward.
            "started_at": sa.case(
                (new.started_at < _i.started_at, new.started_at), else_=_i.started_at
            ),
        }
        # In one statement, so a writer that knows only the status cannot erase the reason
        # another wrote concurrently (a read-then-write would).
        for name in _KEPT_WHEN_NONE:
            set_[name] = sa.func.coalesce(new[name], _i[name])
        stmt = insert.on_conflict_do_update(index_elements=[_i.interaction_id], set_=set_)
        with begin_write(self._engine) as conn:
            conn.execute(stmt)

    def get_interaction(self, interaction_id: str) -> InteractionRecord | None:
        """One interaction, or None if none was stored."""
        stmt = sa.select(interactions).where(_i.interaction_id == interaction_id)
        with self._engine.connect() as conn:
            row = conn.execute(stmt).mappings().first()
        return None if row is None else _interaction_from_row(row)

    def customer_interactions(
        self,
        customer_id: str,
        *,
        since: datetime,
        exclude: str | None = None,
        limit: int = DEFAULT_LIMIT,
    ) -> list[InteractionRecord]:
        """The customer's interactions started at or after `since`, newest first, but `exclude`."""
        if isinstance(limit, bool) or not 1 <= limit <= MAX_LIMIT:
            raise ValueError(f"limit must be between 1 and {MAX_LIMIT}, not {limit!r}")
        if since.tzinfo is None:
            raise ValueError(f"since must be timezone-aware, not {since.isoformat()}")
        conditions: list[sa.ColumnElement[bool]] = [
            _i.customer_id == customer_id,
            _i.started_at >= since.astimezone(UTC),
        ]
        if exclude is not None:
            conditions.append(_i.interaction_id != exclude)
        stmt = (
            sa.select(interactions)
            .where(*conditions)
            # interaction_id breaks ties so equal start times list the same way every time.
            .order_by(_i.started_at.desc(), _i.interaction_id.desc())
            .limit(limit)
        )
        with self._engine.connect() as conn:
            rows = conn.execute(stmt).mappings().all()
        return [_interaction_from_row(r) for r in rows]

    def record_follow_up(
        self,
        follow_up_id: str,
        *,
        customer_id: str,
        ticket_id: str,
        status: Literal["waiting", "done"],
        outcome: str | None,
        at: datetime,
    ) -> None:
        """Note a follow-up as waiting or done (a done one never goes back to waiting)."""
        if at.tzinfo is None:
            raise ValueError("at must be timezone-aware")
        values = {
            "follow_up_id": follow_up_id,
            "customer_id": customer_id,
            "ticket_id": ticket_id,
            "status": status,
            "outcome": outcome,
            "updated_at": at.astimezone(UTC),
        }
        insert = self._insert(follow_ups).values(**values)
        new = insert.excluded
        # A retried "waiting" write arriving after "done" must not reopen it.
        keep_done = _f.status == "done"
        stmt = insert.on_conflict_do_update(
            index_elements=[_f.follow_up_id],
            set_={
                "status": sa.case((keep_done, _f.status), else_=new.status),
                "outcome": sa.case((keep_done, _f.outcome), else_=new.outcome),
                "updated_at": new.updated_at,
            },
        )
        with begin_write(self._engine) as conn:
            conn.execute(stmt)

    def waiting_follow_ups(self, customer_id: str) -> list[str]:
        """IDs of the customer's follow-ups that are still waiting."""
        stmt = (
            sa.select(_f.follow_up_id)
            .where(_f.customer_id == customer_id, _f.status == "waiting")
            .order_by(_f.follow_up_id)
        )
        with self._engine.connect() as conn:
            return list(conn.scalars(stmt).all())


def _as_utc(row: RowMapping, names: tuple[str, ...]) -> dict[str, Any]:
    values = dict(row)
    for name in names:
        # SQLite hands back naive datetimes; what the store wrote there is UTC.
        if values[name] is not None and values[name].tzinfo is None:
            values[name] = values[name].replace(tzinfo=UTC)
    return values


def _event_from_row(row: RowMapping) -> StoredEvent:
    return StoredEvent.model_validate(_as_utc(row, _EVENT_DATETIMES))


def _interaction_from_row(row: RowMapping) -> InteractionRecord:
    return InteractionRecord.model_validate(_as_utc(row, _INTERACTION_DATETIMES))

"""The ledger of inbound SMS MessageSids already accepted, for replay protection."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine

from fiflow.integrations.database import begin_write, sms_message_ledger

_t = sms_message_ledger.c


class MessageLedger:
    """Which MessageSids were accepted; safe for concurrent callers in many processes."""

    def __init__(self, engine: Engine) -> None:
        if engine.dialect.name not in ("postgresql", "sqlite"):
            raise ValueError(
                f"MessageLedger supports PostgreSQL and SQLite, not {engine.dialect.name}"
            )
        self._engine = engine

    def seen(self, message_id: str) -> bool:
        """Whether this MessageSid was recorded (and not purged yet)."""
        with self._engine.connect() as conn:
            found = conn.scalar(sa.select(sa.literal(1)).where(_t.message_id == message_id))
        return found is not None

    def record(self, message_id: str, at: datetime) -> bool:
        """Record the MessageSid as accepted at `at`; False if it was already there."""
        values = {"message_id": message_id, "accepted_at": _utc(at, "at")}
        # ON CONFLICT DO NOTHING: of two racing inserts of one ID, the loser gets no row back
        # instead of an IntegrityError.
        stmt: sa.Insert
        if self._engine.dialect.name == "postgresql":
            stmt = (
                postgresql.insert(sms_message_ledger)
                .values(**values)
                .on_conflict_do_nothing(index_elements=[_t.message_id])
                .returning(_t.message_id)
            )
        else:
            stmt = (
                sqlite.insert(sms_message_ledger)
                .values(**values)
                .on_conflict_do_nothing(index_elements=[_t.message_id])
                .returning(_t.message_id)
            )
        with begin_write(self._engine) as conn:
            return conn.execute(stmt).first() is not None

    def purge(self, older_than: datetime) -> int:
        """Delete the entries accepted before `older_than`; how many went."""
        stmt = sa.delete(sms_message_ledger).where(_t.accepted_at < _utc(older_than, "older_than"))
        with begin_write(self._engine) as conn:
            return conn.execute(stmt).rowcount


def _utc(value: datetime, name: str) -> datetime:
    # SQLite keeps no offset, so every stored and compared time is UTC.
    if value.tzinfo is None:
        raise ValueError(f"{name} must be timezone-aware, not {value.isoformat()}")
    return value.astimezone(UTC)

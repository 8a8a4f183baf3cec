"""SMS opt-out state (STOP / START), keyed by a hash of the phone number."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine

from fiflow.integrations.database import begin_write, sms_opt_outs

_t = sms_opt_outs.c


class OptOutStore:
    """Reads and records opt-outs; safe for concurrent callers in many processes."""

    def __init__(self, engine: Engine) -> None:
        if engine.dialect.name not in ("postgresql", "sqlite"):
            raise ValueError(
                f"OptOutStore supports PostgreSQL and SQLite, not {engine.dialect.name}"
            )
        self._engine = engine

    def is_opted_out(self, address_hash: str) -> bool:
        """Whether this address has opted out (no row means it has not)."""
        with self._engine.connect() as conn:
            value = conn.scalar(sa.select(_t.opted_out).where(_t.address_hash == address_hash))
        return bool(value)

    def set_opted_out(
        self,
        address_hash: str,
        opted_out: bool,
        *,
        keyword: str | None,
        source_message_id: str | None,
        at: datetime,
    ) -> bool:
        """Record STOP (True) or START (False); True if this keyword changed the state.

        Idempotent per message: the same keyword message stored again (an activity retried
        after its commit, or a write carried across continue-as-new) answers True again, so
        the confirmation carriers require is not lost; another message's repeat is False.
        """
        values = {
            "opted_out": opted_out,
            "keyword": keyword,
            "source_message_id": source_message_id,
            "updated_at": at,
        }
        if opted_out:
            stmt: sa.Insert | sa.Update = self._stop_upsert(address_hash, values)
        else:
            # No row already means "not opted out": START then changes nothing and
            # stores nothing.
            stmt = (
                sa.update(sms_opt_outs)
                .where(_t.address_hash == address_hash, _t.opted_out.is_(True))
                .values(**values)
                .returning(_t.address_hash)
            )
        with begin_write(self._engine) as conn:
            if conn.execute(stmt).first() is not None:
                return True
            if source_message_id is None:
                return False
            already = conn.scalar(
                sa.select(sa.func.count())
                .select_from(sms_opt_outs)
                .where(
                    _t.address_hash == address_hash,
                    _t.opted_out.is_(opted_out),
                    _t.source_message_id == source_message_id,
                )
            )
            return bool(already)

    def _stop_upsert(self, address_hash: str, values: dict[str, Any]) -> sa.Insert:
        # The conflict update's WHERE is re-checked against the latest committed row after
        # waiting for its lock, so of two racing STOPs exactly one gets a row back.
        where = _t.opted_out.is_(False)
        if self._engine.dialect.name == "postgresql":
            pg = postgresql.insert(sms_opt_outs).values(address_hash=address_hash, **values)
            return pg.on_conflict_do_update(
                index_elements=[_t.address_hash], set_=values, where=where
            ).returning(_t.address_hash)
        lite = sqlite.insert(sms_opt_outs).values(address_hash=address_hash, **values)
        return lite.on_conflict_do_update(
            index_elements=[_t.address_hash], set_=values, where=where
        ).returning(_t.address_hash)

"""Customers' alert preferences in the database: one versioned document per customer.

Writes are optimistic: each names the version it replaces (0: none stored yet) and lands
only if that is still the stored one, in one statement, so two app sessions editing at once
never overwrite each other silently; the loser gets `PreferenceVersionConflict` with the
version now stored. Reads for many customers at once (the stream consumer's and the batch's)
go by chunks of ids.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine

from fiflow.domain.feeds.preferences import AlertPreferences, StoredPreferences
from fiflow.integrations.database import alert_preferences, begin_write

_t = alert_preferences.c
# Bound parameters per IN list: far under SQLite's and PostgreSQL's limits.
CHUNK = 1000


class PreferenceVersionConflict(Exception):
    """The preferences changed since the version the writer read."""

    def __init__(self, customer_id: str, expected: int, current: int):
        super().__init__(
            f"alert preferences of {customer_id} are at version {current}, not {expected}"
        )
        self.customer_id = customer_id
        self.expected = expected
        self.current = current


def _utc(value: datetime) -> datetime:
    # SQLite returns naive datetimes; every stored time is UTC.
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _stored(row: sa.Row[Any, Any, Any, Any]) -> StoredPreferences:
    return StoredPreferences(
        customer_id=row.customer_id,
        version=row.version,
        updated_at=_utc(row.updated_at),
        defaults=False,
        preferences=AlertPreferences.model_validate(row.preferences),
    )


class PreferenceStore:
    """Reads and writes alert preferences; safe for concurrent callers in many processes."""

    def __init__(self, engine: Engine) -> None:
        if engine.dialect.name not in ("postgresql", "sqlite"):
            raise ValueError(
                f"PreferenceStore supports PostgreSQL and SQLite, not {engine.dialect.name}"
            )
        self._engine = engine

    def get(self, customer_id: str) -> StoredPreferences | None:
        """The customer's stored preferences, or None when they stored none."""
        found = self.preferences_for([customer_id])
        return found.get(customer_id)

    def preferences_for(self, customer_ids: Iterable[str]) -> dict[str, StoredPreferences]:
        """The stored preferences of each of these customers who has some (others: absent)."""
        ids = list(dict.fromkeys(customer_ids))
        found: dict[str, StoredPreferences] = {}
        columns = (_t.customer_id, _t.version, _t.preferences, _t.updated_at)
        with self._engine.connect() as conn:
            for start in range(0, len(ids), CHUNK):
                chunk = ids[start : start + CHUNK]
                for row in conn.execute(sa.select(*columns).where(_t.customer_id.in_(chunk))):
                    found[row.customer_id] = _stored(row)
        return found

    def put(
        self,
        customer_id: str,
        preferences: AlertPreferences,
        *,
        expected_version: int,
        at: datetime,
        by: str | None = None,
    ) -> StoredPreferences:
        """Store the preferences over `expected_version` (0: none stored yet) as the next one.

        PreferenceVersionConflict when the stored version is another (someone wrote first).
        `by` names who changed them (a role or staff ID, never the customer's data).
        """
        if expected_version < 0:
            raise ValueError("expected_version is 0 or more")
        values = {
            "version": expected_version + 1,
            "preferences": preferences.model_dump(mode="json"),
            "updated_at": at.astimezone(UTC),
            "updated_by": by,
        }
        stmt: sa.Insert | sa.Update
        if expected_version == 0:
            stmt = self._insert_new(customer_id, values)
        else:
            stmt = (
                sa.update(alert_preferences)
                .where(_t.customer_id == customer_id, _t.version == expected_version)
                .values(**values)
                .returning(_t.customer_id)
            )
        with begin_write(self._engine) as conn:
            if conn.execute(stmt).first() is None:
                current = conn.scalar(sa.select(_t.version).where(_t.customer_id == customer_id))
                raise PreferenceVersionConflict(customer_id, expected_version, current or 0)
        return StoredPreferences(
            customer_id=customer_id,
            version=expected_version + 1,
            updated_at=_utc(at),
            defaults=False,
            preferences=preferences,
        )

    def _insert_new(self, customer_id: str, values: dict[str, object]) -> sa.Insert:
        # A racing first write inserts the row first: this one then inserts nothing and
        # reads as a conflict instead of failing on the primary key.
        if self._engine.dialect.name == "postgresql":
            pg = postgresql.insert(alert_preferences).values(customer_id=customer_id, **values)
            return pg.on_conflict_do_nothing(index_elements=[_t.customer_id]).returning(
                _t.customer_id
            )
        lite = sqlite.insert(alert_preferences).values(customer_id=customer_id, **values)
        return lite.on_conflict_do_nothing(index_elements=[_t.customer_id]).returning(
            _t.customer_id
        )

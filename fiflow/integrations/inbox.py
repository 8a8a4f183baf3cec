"""The durable inbox: inbound messages Temporal could not take yet, kept until a relay delivers.

Rows are queued per address (a keyed hash) and delivered oldest first. Several API processes
may relay at once: a relay claims an address by leasing its pending rows, taking only an
address whose oldest pending row nobody holds. On PostgreSQL the claim selects those oldest
rows `FOR UPDATE SKIP LOCKED`, so two relays never take the same address; on SQLite the claim
runs under `BEGIN IMMEDIATE` (one writer at a time), which serialises relays just as well.
Delivery is idempotent anyway (conversations and alerts drop a message ID they have seen),
so a lease that runs out under a slow relay costs a duplicate signal, never a double action.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine

from fiflow.integrations.codec import EncryptionCodec
from fiflow.integrations.database import begin_write, inbound_inbox

_t = inbound_inbox.c

CHANNELS = ("sms", "push")


@dataclass(frozen=True)
class InboxMessage:
    """One queued message, with its content unsealed."""

    id: int
    channel: str
    address_digest: str
    message_id: str
    content: dict[str, Any]
    received_at: datetime
    attempts: int


class Inbox:
    """The inbox table; safe for concurrent callers in many processes."""

    def __init__(self, engine: Engine, codec: EncryptionCodec | None) -> None:
        if engine.dialect.name not in ("postgresql", "sqlite"):
            raise ValueError(f"Inbox supports PostgreSQL and SQLite, not {engine.dialect.name}")
        self._engine = engine
        # None only with payload encryption turned off (local only): then, like Temporal's
        # history, the inbox holds the content unencrypted.
        self._codec = codec

    def add(
        self,
        channel: str,
        address_digest: str,
        message_id: str,
        content: dict[str, Any],
        received_at: datetime,
    ) -> bool:
        """Queue a message; False if this channel's message ID is already queued (a retry)."""
        if channel not in CHANNELS:
            raise ValueError(f"channel must be one of {', '.join(CHANNELS)}")
        values = {
            "channel": channel,
            "address_digest": address_digest,
            "message_id": message_id,
            "payload": self._seal(content),
            "received_at": _utc(received_at, "received_at"),
            "attempts": 0,
        }
        index = [_t.channel, _t.message_id]
        stmt: sa.Insert
        if self._engine.dialect.name == "postgresql":
            stmt = (
                postgresql.insert(inbound_inbox)
                .values(**values)
                .on_conflict_do_nothing(index_elements=index)
                .returning(_t.id)
            )
        else:
            stmt = (
                sqlite.insert(inbound_inbox)
                .values(**values)
                .on_conflict_do_nothing(index_elements=index)
                .returning(_t.id)
            )
        with begin_write(self._engine) as conn:
            return conn.execute(stmt).first() is not None

    def has_pending(self, address_digest: str) -> bool:
        """Whether messages of this address still wait (a newer one must queue behind them)."""
        return has_pending(self._engine, address_digest)

    def pending(self, address_digest: str | None = None) -> list[InboxMessage]:
        """Messages not delivered yet, oldest first (of one address, or all)."""
        query = sa.select(inbound_inbox).where(_t.delivered_at.is_(None)).order_by(_t.id)
        if address_digest is not None:
            query = query.where(_t.address_digest == address_digest)
        with self._engine.connect() as conn:
            return [self._message(row) for row in conn.execute(query)]

    def pending_count(self) -> int:
        """How many messages wait."""
        query = sa.select(sa.func.count()).where(_t.delivered_at.is_(None))
        with self._engine.connect() as conn:
            return int(conn.scalar(query) or 0)

    def claim(self, now: datetime, lease: timedelta, max_addresses: int = 50) -> list[InboxMessage]:
        """Lease the pending messages of up to `max_addresses` addresses nobody else holds.

        Oldest first; the caller delivers each address's messages in the order given.
        """
        now = _utc(now, "now")
        # An address is free when its oldest pending row is not leased: a relay leases every
        # pending row of the addresses it takes, so the oldest row stands for the address.
        oldest = (
            sa.select(sa.func.min(_t.id))
            .where(_t.delivered_at.is_(None))
            .group_by(_t.address_digest)
        )
        heads = (
            sa.select(_t.address_digest)
            .where(
                _t.id.in_(oldest),
                sa.or_(_t.claimed_until.is_(None), _t.claimed_until < now),
            )
            .order_by(_t.id)
            .limit(max_addresses)
            # Only PostgreSQL: SQLite has no row locks and its BEGIN IMMEDIATE serialises us.
            .with_for_update(skip_locked=True)
        )
        with begin_write(self._engine) as conn:
            addresses = list(conn.scalars(heads))
            if not addresses:
                return []
            pending = sa.and_(_t.address_digest.in_(addresses), _t.delivered_at.is_(None))
            conn.execute(sa.update(inbound_inbox).where(pending).values(claimed_until=now + lease))
            rows = conn.execute(sa.select(inbound_inbox).where(pending).order_by(_t.id)).all()
        return [self._message(row) for row in rows]

    def mark_delivered(self, id_: int, at: datetime, note: str | None = None) -> None:
        """The message reached Temporal (or, with a `note`, was settled without it)."""
        stmt = (
            sa.update(inbound_inbox)
            .where(_t.id == id_)
            .values(
                delivered_at=_utc(at, "at"),
                claimed_until=None,
                attempts=_t.attempts + 1,
                last_error=note,
            )
        )
        with begin_write(self._engine) as conn:
            conn.execute(stmt)

    def record_failure(self, id_: int, error: str) -> None:
        """A delivery attempt failed: count it and keep the error's type (never its message)."""
        stmt = (
            sa.update(inbound_inbox)
            .where(_t.id == id_)
            .values(attempts=_t.attempts + 1, last_error=error[:128])
        )
        with begin_write(self._engine) as conn:
            conn.execute(stmt)

    def renew(self, ids: Iterable[int], until: datetime) -> None:
        """Extend the lease on messages still pending (a relay working through a backlog)."""
        self._lease(ids, _utc(until, "until"))

    def release(self, ids: Iterable[int]) -> None:
        """Give the lease on these messages back, for the next relay round (any process)."""
        self._lease(ids, None)

    def _lease(self, ids: Iterable[int], until: datetime | None) -> None:
        ids = list(ids)
        if not ids:
            return
        stmt = (
            sa.update(inbound_inbox)
            .where(_t.id.in_(ids), _t.delivered_at.is_(None))
            .values(claimed_until=until)
        )
        with begin_write(self._engine) as conn:
            conn.execute(stmt)

    def purge(self, older_than: datetime) -> int:
        """Delete messages delivered before `older_than`; how many went. Pending ones stay."""
        stmt = sa.delete(inbound_inbox).where(
            _t.delivered_at.is_not(None), _t.delivered_at < _utc(older_than, "older_than")
        )
        with begin_write(self._engine) as conn:
            return conn.execute(stmt).rowcount

    def _seal(self, content: dict[str, Any]) -> dict[str, str]:
        data = json.dumps(content, separators=(",", ":"), sort_keys=True).encode()
        if self._codec is None:
            return {"clear": base64.b64encode(data).decode("ascii")}
        return self._codec.seal(data)

    def _unseal(self, payload: dict[str, str]) -> dict[str, Any]:
        if "clear" in payload:
            data = base64.b64decode(payload["clear"])
        else:
            if self._codec is None:
                raise ValueError("an inbox message is encrypted but payload encryption is off")
            data = self._codec.unseal(payload)
        content: dict[str, Any] = json.loads(data)
        return content

    def _message(self, row: sa.Row[Any]) -> InboxMessage:
        return InboxMessage(
            id=row.id,
            channel=row.channel,
            address_digest=row.address_digest,
            message_id=row.message_id,
            content=self._unseal(row.payload),
            received_at=_as_utc(row.received_at),
            attempts=row.attempts,
        )


def has_pending(engine: Engine, address_digest: str) -> bool:
    """Whether messages of this address still wait (needs no key: nothing is unsealed)."""
    query = sa.select(sa.literal(1)).where(
        _t.address_digest == address_digest, _t.delivered_at.is_(None)
    )
    with engine.connect() as conn:
        return conn.scalar(query.limit(1)) is not None


def group_by_address(messages: Sequence[InboxMessage]) -> dict[str, list[InboxMessage]]:
    """Messages per address, each list oldest first (the order `claim` returns keeps)."""
    out: dict[str, list[InboxMessage]] = {}
    for message in messages:
        out.setdefault(message.address_digest, []).append(message)
    return out


def _utc(value: datetime, name: str) -> datetime:
    # SQLite keeps no offset, so every stored and compared time is UTC.
    if value.tzinfo is None:
        raise ValueError(f"{name} must be timezone-aware, not {value.isoformat()}")
    return value.astimezone(UTC)


def _as_utc(value: datetime) -> datetime:
    # SQLite hands back naive datetimes; the stored value is UTC there.
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

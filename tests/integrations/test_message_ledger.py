"""The SMS MessageSid ledger against SQLite and a real PostgreSQL: record, seen, race, purge."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta, timezone
from types import SimpleNamespace
from typing import cast

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from fiflow.integrations.message_ledger import MessageLedger

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
SID = "SM" + "0" * 31 + "1"


@pytest.fixture
def ledger(engine: Engine) -> MessageLedger:
    return MessageLedger(engine)


def _rows(engine: Engine) -> list[tuple[str, datetime]]:
    table = sa.table("sms_message_ledger", sa.column("message_id"), sa.column("accepted_at"))
    query = sa.select(table).order_by(table.c.message_id)
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    # SQLite hands back naive datetimes; the stored value is UTC there.
    return [(r.message_id, _as_utc(r.accepted_at)) for r in rows]


def _as_utc(value: datetime | str) -> datetime:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def test_table_holds_only_the_id_and_the_time(engine: Engine) -> None:
    inspector = sa.inspect(engine)
    columns = {c["name"]: c for c in inspector.get_columns("sms_message_ledger")}
    assert set(columns) == {"message_id", "accepted_at"}
    assert not columns["accepted_at"]["nullable"]
    pk = inspector.get_pk_constraint("sms_message_ledger")
    assert pk["constrained_columns"] == ["message_id"]


def test_unknown_id_is_not_seen(ledger: MessageLedger) -> None:
    assert ledger.seen(SID) is False


def test_recorded_id_is_seen(ledger: MessageLedger, engine: Engine) -> None:
    assert ledger.record(SID, T0) is True

    assert ledger.seen(SID) is True
    assert ledger.seen(SID + "2") is False
    [(message_id, accepted_at)] = _rows(engine)
    assert message_id == SID
    assert accepted_at == T0


def test_times_are_stored_in_utc(ledger: MessageLedger, engine: Engine) -> None:
    india = timezone(timedelta(hours=5, minutes=30))
    ledger.record(SID, datetime(2025, 3, 1, 17, 30, tzinfo=india))

    # Naive in SQLite, so anything but UTC would read back as another instant.
    assert _rows(engine)[0][1] == T0
    with pytest.raises(ValueError, match="timezone-aware"):
        ledger.record("SMnaive", datetime(2025, 3, 1))  # noqa: DTZ001


def test_second_record_of_one_id_returns_false_and_keeps_the_first(
    ledger: MessageLedger, engine: Engine
) -> None:
    assert ledger.record(SID, T0) is True
    assert ledger.record(SID, T0 + timedelta(days=3)) is False

    [(_, accepted_at)] = _rows(engine)
    assert accepted_at == T0


def test_concurrent_records_of_one_id_insert_once_without_raising(ledger: MessageLedger) -> None:
    threads = 8
    barrier = threading.Barrier(threads)

    def call(_: int) -> bool:
        barrier.wait(timeout=10)
        return ledger.record(SID, T0)

    with ThreadPoolExecutor(max_workers=threads) as pool:
        results = list(pool.map(call, range(threads)))

    assert results.count(True) == 1
    assert ledger.seen(SID) is True


def test_purge_deletes_only_entries_older_than_the_cutoff(
    ledger: MessageLedger, engine: Engine
) -> None:
    for days in (100, 91, 89, 1):
        assert ledger.record(f"SMage{days:03d}", T0 - timedelta(days=days)) is True

    assert ledger.purge(T0 - timedelta(days=90)) == 2

    assert [m for m, _ in _rows(engine)] == ["SMage001", "SMage089"]
    assert ledger.seen("SMage100") is False
    assert ledger.seen("SMage089") is True
    assert ledger.purge(T0 - timedelta(days=90)) == 0
    # Once purged, the ID can be recorded again.
    assert ledger.record("SMage100", T0) is True


def test_unsupported_dialect_is_refused() -> None:
    # Only the dialect name is consulted, so a stand-in avoids needing a MySQL driver.
    engine = cast(Engine, SimpleNamespace(dialect=SimpleNamespace(name="mysql")))
    with pytest.raises(ValueError, match="PostgreSQL and SQLite, not mysql"):
        MessageLedger(engine)

"""The alert preferences store against SQLite and a real PostgreSQL: versions, conflicts, bulk."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from types import SimpleNamespace
from typing import cast

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from fiflow.domain.feeds.preferences import (
    AlertPreferences,
    AmountOver,
    BalanceBelow,
    CardActivity,
    Declined,
    MerchantCategory,
    PreferenceChannel,
)
from fiflow.integrations.preferences_store import (
    CHUNK,
    PreferenceStore,
    PreferenceVersionConflict,
)

AT = datetime(2026, 11, 25, 9, 30, tzinfo=timezone(timedelta(hours=1)))
PREFS = AlertPreferences(
    preferences=[
        AmountOver(amount=Decimal("1234.5678"), channel=PreferenceChannel.PUSH),
        CardActivity(cards=["4242"], quiet_hours_ok=True),
        MerchantCategory(mccs=["7995", "4829"]),
        BalanceBelow(amount=Decimal("0.01"), currency="EUR"),
    ]
)
OTHER = AlertPreferences(preferences=[Declined(channel=PreferenceChannel.SMS)])


@pytest.fixture
def store(engine: Engine) -> PreferenceStore:
    return PreferenceStore(engine)


def test_nothing_stored_reads_none(store: PreferenceStore) -> None:
    assert store.get("cust-1") is None
    assert store.preferences_for([]) == {}
    assert store.preferences_for(["cust-1", "cust-2"]) == {}


def test_first_write_then_read_back_exactly(store: PreferenceStore, engine: Engine) -> None:
    written = store.put("cust-1", PREFS, expected_version=0, at=AT, by="customer")

    got = store.get("cust-1")
    assert got is not None
    assert got == written
    assert (got.version, got.defaults, got.customer_id) == (1, False, "cust-1")
    assert got.preferences == PREFS  # amounts exact, order kept
    assert got.updated_at == AT and got.updated_at.tzinfo is not None
    with engine.connect() as conn:
        row = conn.execute(sa.text("SELECT updated_by, version FROM alert_preferences")).one()
    assert tuple(row) == ("customer", 1)


def test_each_write_names_the_version_it_replaces(store: PreferenceStore) -> None:
    store.put("cust-1", PREFS, expected_version=0, at=AT)

    with pytest.raises(PreferenceVersionConflict) as first_again:
        store.put("cust-1", OTHER, expected_version=0, at=AT)
    assert (first_again.value.expected, first_again.value.current) == (0, 1)

    second = store.put("cust-1", OTHER, expected_version=1, at=AT + timedelta(minutes=1))
    assert second.version == 2

    with pytest.raises(PreferenceVersionConflict) as stale:
        store.put("cust-1", PREFS, expected_version=1, at=AT)
    assert stale.value.current == 2
    with pytest.raises(PreferenceVersionConflict) as ahead:
        store.put("cust-2", PREFS, expected_version=3, at=AT)
    assert ahead.value.current == 0

    got = store.get("cust-1")
    assert got is not None and (got.version, got.preferences) == (2, OTHER)
    assert store.get("cust-2") is None
    with pytest.raises(ValueError, match="0 or more"):
        store.put("cust-1", PREFS, expected_version=-1, at=AT)


@pytest.mark.parametrize("expected", [0, 1])
def test_concurrent_writers_of_one_version_one_wins(store: PreferenceStore, expected: int) -> None:
    if expected:
        store.put("cust-1", PREFS, expected_version=0, at=AT)
    writers = 6
    barrier = threading.Barrier(writers)

    def write(n: int) -> str:
        prefs = AlertPreferences(preferences=[AmountOver(amount=Decimal(n))])
        barrier.wait()
        try:
            store.put("cust-1", prefs, expected_version=expected, at=AT)
        except PreferenceVersionConflict:
            return "conflict"
        return f"won {n}"

    with ThreadPoolExecutor(writers) as pool:
        outcomes = list(pool.map(write, range(writers)))

    won = [o for o in outcomes if o.startswith("won")]
    assert len(won) == 1 and outcomes.count("conflict") == writers - 1
    got = store.get("cust-1")
    assert got is not None and got.version == expected + 1
    amount = got.preferences.preferences[0]
    assert isinstance(amount, AmountOver)
    assert won == [f"won {amount.amount}"]


def test_bulk_read_spans_chunks(store: PreferenceStore) -> None:
    stored = {f"cust-{n:05d}" for n in range(0, 2 * CHUNK + 500, 97)}
    for customer_id in stored:
        store.put(customer_id, PREFS, expected_version=0, at=AT.astimezone(UTC))
    asked = [f"cust-{n:05d}" for n in range(2 * CHUNK + 500)] + ["cust-00000"]

    found = store.preferences_for(asked)

    assert set(found) == stored
    assert all(p.preferences == PREFS and p.version == 1 for p in found.values())
    assert set(store.preferences_for(iter(["cust-00097", "nobody"]))) == {"cust-00097"}


def test_unsupported_dialect_is_refused() -> None:
    engine = cast(Engine, SimpleNamespace(dialect=SimpleNamespace(name="mysql")))
    with pytest.raises(ValueError, match="PostgreSQL and SQLite, not mysql"):
        PreferenceStore(engine)

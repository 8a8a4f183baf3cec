"""One window record per customer decides exactly as one state per window key did.

The stream consumer keeps a customer's windows as one record (one KV entry); the per-key
states (`observe_key`) are the reference the batch engine was proved equal to. Any arrival
order, late transactions and redeliveries included, must yield the same card and customer
states from the record as from the per-key states.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fiflow.domain.feeds.transactions import Status, Transaction
from fiflow.domain.feeds.windows import (
    CARD_IDLE,
    CustomerWindows,
    WindowState,
    merged_record,
    observe_customer,
    observe_key,
    windows_for,
)

T0 = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
HORIZONS = [timedelta(0), timedelta(minutes=5), timedelta(minutes=15), timedelta(hours=1)]


def txn(transaction_id: str, minute: int, card: str = "4242", customer: str = "c-1") -> Transaction:
    return Transaction(
        transaction_id=transaction_id,
        customer_id=customer,
        card_last4=card,
        amount=Decimal("10.00"),
        currency="USD",
        merchant="Shop",
        mcc="5411",
        country="US",
        card_present=True,
        status=Status.APPROVED,
        occurred_at=T0 + timedelta(minutes=minute),
    )


# (id number, minute, card): ids repeat (redeliveries), minutes go back (late arrivals).
arrivals = st.lists(
    st.tuples(
        st.integers(0, 30), st.integers(-120, 240), st.sampled_from(["1111", "2222", "3333"])
    ),
    min_size=1,
    max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(
    arrivals,
    st.sampled_from(HORIZONS),
    st.sampled_from(HORIZONS),
)
def test_the_record_derives_the_per_key_states_whatever_the_arrival_order(
    events: list[tuple[int, int, str]], card_h: timedelta, customer_h: timedelta
) -> None:
    # A redelivery is the same transaction: the first arrival of an id fixes its content.
    first: dict[int, Transaction] = {}
    states: dict[str, WindowState] = {}
    record = CustomerWindows(key="customer:c-1")
    for number, minute, card in events:
        t = first.setdefault(number, txn(f"t-{number:02d}", minute, card))
        card_state = states.get(t.card_key, WindowState(key=t.card_key))
        customer_state = states.get(t.customer_key, WindowState(key=t.customer_key))
        derived = windows_for(record, t, card=card_h, customer=customer_h)
        assert derived.card.recent == card_state.recent
        assert derived.customer.recent == customer_state.recent
        states[t.card_key] = observe_key(card_state, t, card_h)
        states[t.customer_key] = observe_key(customer_state, t, customer_h)
        record = observe_customer(record, t, card=card_h, customer=customer_h)
    # Each transaction is held once, and nothing no window needs.
    ids = [t.transaction_id for t in record.recent]
    assert len(ids) == len(set(ids))
    needed = {t.transaction_id for s in states.values() for t in s.recent}
    assert set(ids) == needed
    assert CustomerWindows.model_validate_json(record.model_dump_json()) == record


def test_a_redelivered_transaction_leaves_the_record_unchanged() -> None:
    h = {"card": timedelta(minutes=15), "customer": timedelta(hours=1)}
    record = CustomerWindows(key="customer:c-1")
    for n in range(3):
        record = observe_customer(record, txn(f"t-{n}", n), **h)
    assert observe_customer(record, txn("t-1", 1), **h) is record


def test_a_card_idle_for_a_week_leaves_the_record() -> None:
    h = {"card": timedelta(minutes=15), "customer": timedelta(hours=1)}
    record = CustomerWindows(key="customer:c-1")
    record = observe_customer(record, txn("old", 0, card="1111"), **h)
    record = observe_customer(record, txn("day-6", 6 * 24 * 60, card="2222"), **h)
    # Six days on, the old card's last transaction is still its window's (a late one may come).
    assert [t.transaction_id for t in record.recent] == ["old", "day-6"]
    week = int(CARD_IDLE.total_seconds() // 60) + 1
    record = observe_customer(record, txn("day-8", week, card="2222"), **h)
    assert [t.transaction_id for t in record.recent] == ["day-8"]


def test_per_key_states_merge_into_one_record() -> None:
    # What an older consumer stored (a card's and the customer's state) becomes one record.
    h = {"card": timedelta(minutes=15), "customer": timedelta(hours=1)}
    a, b, c = txn("a", 0), txn("b", 5, card="1111"), txn("c", 10)
    record = merged_record("customer:c-1", [(a, c), (a, b, c)], **h)
    assert [t.transaction_id for t in record.recent] == ["a", "b", "c"]
    assert windows_for(record, txn("d", 12), **h).card.recent == (a, c)


def test_a_record_refuses_another_customers_transaction() -> None:
    record = CustomerWindows(key="customer:c-1")
    with pytest.raises(ValueError, match="not transaction"):
        windows_for(record, txn("x", 0, customer="c-2"), card=timedelta(0), customer=timedelta(0))

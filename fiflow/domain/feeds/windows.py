"""The real-time evaluator: one transaction against a compiled condition and its windows.

Window state is explicit and serialisable (a pydantic model per key), so the stream
consumer can persist it between transactions and after a restart carry on exactly where it
was. `observe` adds a transaction to a key's state (idempotent by transaction_id, pruned to
the longest window); `evaluate` reads it. Both are pure.

Window semantics (the batch engine in fiflow.integrations.screening agrees):

- Transactions are ordered by (occurred_at as an instant, transaction_id).
- An aggregate `within D, per K` over the current transaction t counts the transactions of
  K (the card: customer_id and card_last4; or the customer) that are not later than t in
  that order and occurred at or after t.occurred_at - D: the boundary is inclusive, and t
  itself always counts ("three declines within 15m" counts the current decline).
- Whether `observe(t)` ran before `evaluate(t)` or not makes no difference: t counts once.
- A transaction that arrives late is evaluated against what the state still holds; the
  state keeps what the longest window needs behind the newest transaction it has seen.

The stream consumer stores one record per customer (`CustomerWindows`: one KV entry, one read
and one compare-and-set per customer and batch) instead of one state per key. The record
holds every transaction some window of the customer still needs; `windows_for` derives the
card's and the customer's states from it, equal to what `observe_key` keeps per key (a
property test holds the two to it), so both layouts decide alike.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field

from fiflow.domain.feeds.expressions import (
    Aggregate,
    And,
    Compare,
    CompiledCondition,
    FieldRef,
    InList,
    Literal,
    Node,
    Not,
    Or,
    Value,
)
from fiflow.domain.feeds.transactions import FeedSettings, Transaction, field_value


class WindowState(BaseModel):
    """One key's recent transactions, oldest first (by occurred_at, then transaction_id)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    key: str = Field(description="`card:<customer_id>/<card_last4>` or `customer:<id>`.")
    recent: tuple[Transaction, ...] = ()


class Windows(BaseModel):
    """The two window states one transaction touches: its card's and its customer's."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    card: WindowState
    customer: WindowState

    @classmethod
    def empty_for(cls, txn: Transaction) -> Windows:
        """Fresh states for the transaction's card and customer."""
        return cls(card=WindowState(key=txn.card_key), customer=WindowState(key=txn.customer_key))


# A card unused this long behind its customer's newest transaction leaves the customer's
# record, which otherwise would keep each old card's last transactions forever (the per-card
# KV entries this record replaced expired after 7 idle days the same way). Far beyond any
# window (at most 24h): only a transaction arriving days late could see the difference.
CARD_IDLE = timedelta(days=7)


class CustomerWindows(BaseModel):
    """Every window state of one customer as one record: the transactions its own window or
    one of its cards' windows still needs, oldest first (by occurred_at, then
    transaction_id). Each transaction is held once, however many windows need it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    key: str = Field(description="`customer:<customer_id>`, the customer's window key.")
    recent: tuple[Transaction, ...] = ()

    @classmethod
    def empty_for(cls, txn: Transaction) -> CustomerWindows:
        """A fresh record for the transaction's customer."""
        return cls.model_construct(key=txn.customer_key, recent=())


def _order(txn: Transaction) -> tuple[object, str]:
    return (txn.instant, txn.transaction_id)


def observe_key(state: WindowState, txn: Transaction, horizon: timedelta) -> WindowState:
    """The key's state with the transaction added and anything older than `horizon` dropped."""
    if any(t.transaction_id == txn.transaction_id for t in state.recent):
        return state
    merged = sorted((*state.recent, txn), key=_order)
    cutoff = merged[-1].instant - horizon
    # Built from already-validated parts: skip re-validating every held transaction.
    return WindowState.model_construct(
        key=state.key, recent=tuple(t for t in merged if t.instant >= cutoff)
    )


def observe(windows: Windows, txn: Transaction, *, card: timedelta, customer: timedelta) -> Windows:
    """Both states with the transaction added (horizons: the longest window per key)."""
    _check_keys(windows, txn)
    return Windows.model_construct(
        card=observe_key(windows.card, txn, card),
        customer=observe_key(windows.customer, txn, customer),
    )


def windows_for(
    record: CustomerWindows, txn: Transaction, *, card: timedelta, customer: timedelta
) -> Windows:
    """The transaction's card and customer states as `observe_key` would keep them with these
    horizons: the customer's transactions from its newest minus `customer`, the card's from
    the card's newest minus `card`."""
    _check_record(record, txn)
    recent = record.recent
    card_txns = [t for t in recent if t.card_last4 == txn.card_last4]
    card_state: tuple[Transaction, ...] = ()
    if card_txns:
        card_cut = card_txns[-1].instant - card
        card_state = tuple(t for t in card_txns if t.instant >= card_cut)
    customer_state: tuple[Transaction, ...] = ()
    if recent:
        customer_cut = recent[-1].instant - customer
        customer_state = tuple(t for t in recent if t.instant >= customer_cut)
    # Built from already-validated parts: skip re-validating every held transaction.
    return Windows.model_construct(
        card=WindowState.model_construct(key=txn.card_key, recent=card_state),
        customer=WindowState.model_construct(key=txn.customer_key, recent=customer_state),
    )


def observe_customer(
    record: CustomerWindows, txn: Transaction, *, card: timedelta, customer: timedelta
) -> CustomerWindows:
    """The record with the transaction added (idempotent by transaction_id), keeping only what
    the customer's window (`customer` behind its newest) or its card's (`card` behind that
    card's newest) still needs, and no card idle for CARD_IDLE."""
    _check_record(record, txn)
    if any(t.transaction_id == txn.transaction_id for t in record.recent):
        return record
    merged = sorted((*record.recent, txn), key=_order)
    return CustomerWindows.model_construct(
        key=record.key, recent=_pruned(merged, card=card, customer=customer)
    )


def merged_record(
    key: str, states: list[tuple[Transaction, ...]], *, card: timedelta, customer: timedelta
) -> CustomerWindows:
    """One record from per-key states of one customer (each transaction once), pruned."""
    seen: dict[str, Transaction] = {}
    for recent in states:
        for t in recent:
            seen.setdefault(t.transaction_id, t)
    merged = sorted(seen.values(), key=_order)
    return CustomerWindows.model_construct(
        key=key, recent=_pruned(merged, card=card, customer=customer)
    )


def _pruned(
    merged: list[Transaction], *, card: timedelta, customer: timedelta
) -> tuple[Transaction, ...]:
    if not merged:
        return ()
    newest = merged[-1].instant
    newest_of_card: dict[str, datetime] = {}
    for t in merged:  # ascending: the last one seen of a card is its newest
        newest_of_card[t.card_last4] = t.instant
    idle_cut, customer_cut = newest - CARD_IDLE, newest - customer
    return tuple(
        t
        for t in merged
        if t.instant >= idle_cut
        and (t.instant >= customer_cut or t.instant >= newest_of_card[t.card_last4] - card)
    )


def _check_record(record: CustomerWindows, txn: Transaction) -> None:
    if record.key != txn.customer_key:
        raise ValueError(f"window record {record.key!r} is not transaction {txn.transaction_id}'s")


def evaluate(compiled: CompiledCondition, txn: Transaction, windows: Windows) -> bool:
    """Whether the transaction meets the condition, given its card's and customer's windows."""
    _check_keys(windows, txn)
    result = _eval(compiled.root, txn, compiled.settings, txn, windows)
    assert isinstance(result, bool)
    return result


def _check_keys(windows: Windows, txn: Transaction) -> None:
    if windows.card.key != txn.card_key or windows.customer.key != txn.customer_key:
        raise ValueError(
            f"window states {windows.card.key!r}/{windows.customer.key!r} are not "
            f"transaction {txn.transaction_id}'s"
        )


def members(agg: Aggregate, current: Transaction, windows: Windows) -> list[Transaction]:
    """The transactions an aggregate over `current` looks at (current included)."""
    state = windows.card if agg.per == "card" else windows.customer
    start = current.instant - agg.within
    now = _order(current)
    found = [t for t in state.recent if t.instant >= start and _order(t) < now]
    found.append(current)
    return found


def _eval(
    node: Node, row: Transaction, settings: FeedSettings, current: Transaction, windows: Windows
) -> Value:
    if isinstance(node, Literal):
        return node.value
    if isinstance(node, FieldRef):
        return field_value(row, node.name, settings)
    if isinstance(node, And):
        return all(_eval(p, row, settings, current, windows) for p in node.parts)
    if isinstance(node, Or):
        return any(_eval(p, row, settings, current, windows) for p in node.parts)
    if isinstance(node, Not):
        return not _eval(node.part, row, settings, current, windows)
    if isinstance(node, InList):
        return (_eval(node.operand, row, settings, current, windows) in node.values) != (
            node.negated
        )
    if isinstance(node, Compare):
        left = _eval(node.left, row, settings, current, windows)
        right = _eval(node.right, row, settings, current, windows)
        return _compare(node.op, left, right)
    return _aggregate(node, settings, current, windows)


def _compare(op: str, left: Value, right: Value) -> bool:
    if op == "=":
        return left == right
    if op == "!=":
        return left != right
    # The parser admits ordering only between two numbers or two times.
    if op == "<":
        return left < right  # type: ignore[operator]
    if op == "<=":
        return left <= right  # type: ignore[operator]
    if op == ">":
        return left > right  # type: ignore[operator]
    return left >= right  # type: ignore[operator]


def _aggregate(
    agg: Aggregate, settings: FeedSettings, current: Transaction, windows: Windows
) -> Value:
    rows = members(agg, current, windows)
    if agg.function == "sum":
        total = Decimal(0)
        for t in rows:
            if agg.where is None or _eval(agg.where, t, settings, current, windows):
                value = _eval(agg.arg, t, settings, current, windows)
                assert isinstance(value, Decimal)
                total += value
        return total
    count = sum(1 for t in rows if _eval(agg.arg, t, settings, current, windows))
    if agg.function == "exists":
        return count > 0
    return Decimal(count)

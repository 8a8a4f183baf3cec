"""The condition language: parsing, precedence, types, windows and every refusal."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml

from fiflow.domain.feeds.conditions import parse_condition_rule_set
from fiflow.domain.feeds.expressions import (
    Aggregate,
    And,
    Compare,
    ConditionError,
    InList,
    Not,
    Or,
    compile_condition,
    tokenize,
)
from fiflow.domain.feeds.transactions import FeedSettings, Transaction
from fiflow.domain.feeds.windows import Windows, evaluate, observe, observe_key
from fiflow.domain.rules import RuleSetError

SETTINGS = FeedSettings(home_country="US", home_currency="USD")
T0 = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
SHIPPED = Path(__file__).resolve().parents[2] / "fiflow" / "rules" / "conditions.yaml"


def txn(n: int = 1, **fields: Any) -> Transaction:
    base: dict[str, Any] = {
        "transaction_id": f"t{n:04d}",
        "customer_id": "cust-1",
        "card_last4": "4242",
        "amount": Decimal("10.00"),
        "currency": "USD",
        "merchant": "ACME Inc",
        "mcc": "5411",
        "country": "US",
        "card_present": True,
        "status": "approved",
        "occurred_at": T0,
    }
    return Transaction(**{**base, **fields})


def holds(text: str, t: Transaction, history: tuple[Transaction, ...] = ()) -> bool:
    compiled = compile_condition(text, SETTINGS)
    card, customer = Windows.empty_for(t).card, Windows.empty_for(t).customer
    for h in history:
        if h.card_key == t.card_key:
            card = observe_key(card, h, timedelta(days=1))
        if h.customer_key == t.customer_key:
            customer = observe_key(customer, h, timedelta(days=1))
    return evaluate(compiled, t, Windows(card=card, customer=customer))


def test_tokens_carry_positions() -> None:
    tokens = tokenize('amount >= 10.5 and mcc in ["5411"] within 15m')
    assert [(t.kind, t.text, t.position) for t in tokens[:4]] == [
        ("name", "amount", 1),
        ("op", ">=", 8),
        ("number", "10.5", 11),
        ("name", "and", 16),
    ]
    assert tokens[-2].kind == "duration" and tokens[-2].value == 900
    assert tokens[-1].kind == "end"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("amount = 10", True),
        ("amount == 10.0", True),
        ("amount != 10", False),
        ("amount < 10.01", True),
        ("amount <= 10", True),
        ("amount > 9.9999", True),
        ("amount >= 10.0001", False),
        ('merchant = "ACME Inc"', True),
        ('merchant = "acme inc"', False),
        ("card_present", True),
        ("card_present = false", False),
        ("not card_present", False),
        ('mcc in ["5411", "5412"]', True),
        ('mcc not in ["5411"]', False),
        ("amount in [1, 10]", True),
        ("international", False),
        ("country = home_country and currency = home_currency", True),
        ("foreign_currency", False),
        ("true", True),
        ('status = "approved" and card_last4 = "4242" and customer_id = "cust-1"', True),
    ],
)
def test_every_operator(text: str, expected: bool) -> None:
    assert holds(text, txn()) is expected


def test_precedence_or_and_not() -> None:
    # not > and > or: "a or b and c" is "a or (b and c)".
    root = compile_condition("card_present or amount > 5 and not international", SETTINGS).root
    assert isinstance(root, Or)
    assert isinstance(root.parts[1], And)
    assert isinstance(root.parts[1].parts[1], Not)
    assert holds("false or true and false", txn()) is False
    assert holds("(false or true) and true", txn()) is True
    assert holds("not false and false", txn()) is False
    assert holds("not (false and false)", txn()) is True
    # `not` applies to a whole comparison.
    assert holds("not amount > 5", txn()) is False


def test_literals_and_strings_with_escapes() -> None:
    assert holds('merchant = "Joe\\"s Diner"', txn(merchant='Joe"s Diner'))
    assert holds("merchant = 'Joe\\'s'", txn(merchant="Joe's"))
    root = compile_condition("amount in [1, 2.5, 3]", SETTINGS).root
    assert isinstance(root, InList) and root.values == (Decimal(1), Decimal("2.5"), Decimal(3))


@pytest.mark.parametrize(
    ("duration", "seconds"), [("30s", 30), ("10m", 600), ("15m", 900), ("1h", 3600), ("1d", 86400)]
)
def test_durations(duration: str, seconds: int) -> None:
    root = compile_condition(f"count(true, within {duration}, per card) >= 1", SETTINGS).root
    assert isinstance(root, Compare) and isinstance(root.left, Aggregate)
    assert root.left.within == timedelta(seconds=seconds)


def test_international_and_foreign_currency_follow_the_settings() -> None:
    abroad = txn(country="FR", currency="EUR")
    assert holds("international and foreign_currency", abroad)
    # A card whose home currency is EUR: EUR is not foreign to it.
    assert not holds("foreign_currency", txn(currency="EUR", home_currency="EUR"))
    assert holds("country != home_country", abroad)


def test_times_compare_as_instants_whatever_the_offset() -> None:
    plus2 = timezone(timedelta(hours=2))
    t = txn(occurred_at=datetime(2026, 11, 25, 12, 0, tzinfo=plus2))  # 10:00Z
    assert holds('occurred_at = "2026-11-25T10:00:00Z"', t)
    assert holds('occurred_at = "2026-11-25T05:00:00-05:00"', t)
    assert holds('occurred_at < "2026-11-25T10:00:01+00:00"', t)
    assert not holds('occurred_at > "2026-11-25T12:00:00+02:00"', t)


def test_windows_across_offsets_use_instants() -> None:
    minus5 = timezone(timedelta(hours=-5))
    # 05:50-05:00 is 10:50Z: within 15m before 11:00Z, though its wall clock says 05:50.
    earlier = txn(1, status="declined", occurred_at=datetime(2026, 11, 25, 5, 50, tzinfo=minus5))
    now = txn(2, status="declined", occurred_at=T0 + timedelta(hours=1))
    assert holds('count(status = "declined", within 15m, per card) >= 2', now, (earlier,))
    assert not holds('count(status = "declined", within 5m, per card) >= 2', now, (earlier,))


def test_window_counts_the_current_transaction_and_its_boundary() -> None:
    d = [
        txn(i, status="declined", occurred_at=T0 + timedelta(minutes=m))
        for i, m in ((1, 0), (2, 5), (3, 15))
    ]
    rule = 'count(status = "declined", within 15m, per card) >= 3'
    # t1 is exactly 15m before t3: the boundary is inclusive; t3 counts itself.
    assert holds(rule, d[2], tuple(d[:2]))
    assert not holds(rule, d[2], (d[1],))
    # Observing the current transaction first does not count it twice.
    assert not holds(rule, d[2], (d[1], d[2]))
    # A later transaction is not in an earlier one's window; same-instant ties go by id.
    assert not holds(rule, d[1], tuple(d))
    tie = txn(9, status="declined", occurred_at=T0 + timedelta(minutes=15))
    assert holds("count(true, within 1m, per card) = 2", tie, (d[2],))  # t0003 < t0009
    assert holds("count(true, within 1m, per card) = 1", d[2], (tie,))


def test_windows_per_card_and_per_customer() -> None:
    other_card = txn(1, card_last4="1111", amount=Decimal("4000"))
    now = txn(2, amount=Decimal("2000.01"), occurred_at=T0 + timedelta(minutes=30))
    assert holds("sum(amount, within 1h, per customer) > 6000", now, (other_card,))
    assert not holds("sum(amount, within 1h, per card) > 6000", now, (other_card,))
    assert holds(
        'sum(amount, within 1h, per customer, where status = "declined") = 0', now, (other_card,)
    )
    assert holds('exists(card_last4 = "1111", within 1h, per customer)', now, (other_card,))


def test_state_is_pruned_to_the_horizon_and_idempotent() -> None:
    w = Windows.empty_for(txn())
    for i, minutes in enumerate((0, 10, 20, 40)):
        t = txn(i, occurred_at=T0 + timedelta(minutes=minutes))
        w = observe(w, t, card=timedelta(minutes=15), customer=timedelta(0))
        w = observe(w, t, card=timedelta(minutes=15), customer=timedelta(0))
    assert [t.transaction_id for t in w.card.recent] == ["t0003"]
    assert len(w.customer.recent) == 1  # horizon 0 keeps only the newest
    assert Windows.model_validate_json(w.model_dump_json()) == w


def test_window_state_of_another_card_is_refused() -> None:
    compiled = compile_condition("true", SETTINGS)
    with pytest.raises(ValueError, match="not transaction"):
        evaluate(compiled, txn(card_last4="9999"), Windows.empty_for(txn()))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("amout > 5", "unknown field 'amout'; known: amount, currency"),
        ("velocity(1) > 2", "unknown function 'velocity'; known: count, exists, sum"),
        ('amount > "5"', 'amount is a number; cannot compare it with the string "5"'),
        ("merchant = 5", "merchant is a string; cannot compare it with the number 5"),
        ("card_present = 1", "card_present is a bool; cannot compare it with the number 1"),
        ('status = "decline"', 'status is "approved" or "declined"; "decline" can never match'),
        ('mcc in ["59670"]', "mcc is four digits"),
        ('country = "us"', "country is an ISO 3166 alpha-2 code"),
        ('currency = "usd"', "currency is an ISO 4217 code"),
        ('merchant < "b"', "< needs numbers or times, not strings"),
        ("amount = card_present", "cannot compare a number with a bool using ="),
        ("amount", "a condition must be true or false, not a number"),
        ("amount and true", "`and` needs a true/false condition, not a number"),
        ("true or merchant", "`or` needs a true/false condition, not a string"),
        ("not amount", "`not` needs a true/false condition, not a number"),
        ("amount > 10m", "a duration (10m) is only allowed after `within`"),
        ("amount > 1.00001", "a number has at most 4 decimal places"),
        ("amount >", "expected a value, found the end"),
        ("amount > 5 5", "unexpected `5` after a complete condition"),
        ("(amount > 5", "expected `)`, found the end"),
        ('merchant = "ACME', "unterminated string"),
        ("amount > 5 ; drop", "unexpected character ';'"),
        ("amount not 5", "unexpected `not` after a complete condition"),
        ("card_present in [true]", "`in` needs a number or a string, not a bool"),
        ("mcc in [merchant]", "a list holds literals only"),
        ("count(true, within 25h, per card) > 1", "a window is at most 24h, not 25h"),
        ("count(true, within 0m, per card) > 1", "a window must be longer than 0"),
        ("count(true, within 15, per card) > 1", "expected a duration such as 10m"),
        ("count(true, within 1h, per account) > 1", "expected `card` or `customer` after `per`"),
        ("count(true, 1h, per card) > 1", "expected `within <duration>`"),
        ("count(amount, within 1h, per card) > 1", "count needs a true/false condition"),
        ("sum(card_present, within 1h, per card) > 1", "sum needs a number (amount), not a bool"),
        (
            "exists(count(true, within 1m, per card) > 1, within 1h, per card)",
            "aggregates cannot be nested",
        ),
        ("count > 1", "count needs arguments"),
        ('occurred_at > "yesterday"', "'yesterday' is not an ISO 8601 time"),
        ('occurred_at > "2026-11-25T10:00:00"', "a time needs an offset"),
        ("((((((((((" * 5, "nested more than 40 deep"),
        ("x" * 2001, "a condition is at most 2000 characters"),
    ],
)
def test_every_refusal_names_the_problem(text: str, message: str) -> None:
    with pytest.raises(ConditionError) as caught:
        compile_condition(text, SETTINGS)
    assert message in str(caught.value)
    assert "(at position " in str(caught.value)


@pytest.mark.parametrize(
    ("text", "position"),
    [("amout > 5", 1), ("amount > 5 and mcc = 5411", 22), ("count(true, within 2d, per card)", 20)],
)
def test_errors_point_at_the_position(text: str, position: int) -> None:
    with pytest.raises(ConditionError) as caught:
        compile_condition(text, SETTINGS)
    assert caught.value.position == position


def test_shipped_conditions_are_valid_and_fire_as_described() -> None:
    rules = parse_condition_rule_set(yaml.safe_load(SHIPPED.read_text()), source="shipped")
    assert {c.id for c in rules.conditions} >= {
        "cnp_foreign_after_card_present",
        "large_card_not_present",
        "repeated_declines",
    }
    compiled = rules.compiled()

    def run(*ts: Transaction) -> list[str]:
        w = Windows.empty_for(ts[0])
        fired: list[str] = []
        for t in ts:
            w = compiled.observe(w, t)
            fired = [c.id for c in compiled.matches(t, w)]
        return fired

    present = txn(1)
    cnp = txn(
        2,
        card_present=False,
        amount=Decimal("2000.01"),
        currency="EUR",
        country="FR",
        occurred_at=T0 + timedelta(minutes=10),
    )
    assert run(present, cnp) == ["cnp_foreign_after_card_present"]
    assert run(present, cnp.model_copy(update={"occurred_at": T0 + timedelta(minutes=11)})) == []
    assert run(txn(3, card_present=False, amount=Decimal(5000))) == ["large_card_not_present"]
    declines = [txn(i, status="declined", occurred_at=T0 + timedelta(minutes=i)) for i in (1, 2, 3)]
    assert run(*declines) == ["repeated_declines"]
    assert run(*declines[:2]) == []


def test_an_invalid_condition_is_refused_naming_it() -> None:
    data = yaml.safe_load(SHIPPED.read_text())
    data["conditions"][1]["when"] = "not card_present and amount >= 5000 and mcc = 5411"
    with pytest.raises(RuleSetError) as caught:
        parse_condition_rule_set(data, source="conditions.yaml")
    text = str(caught.value)
    assert "conditions.yaml is invalid" in text
    assert "'large_card_not_present'" in text
    assert "mcc is a string; cannot compare it with the number 5411 (at position 47)" in text


def test_rule_set_refuses_duplicates_unknown_keys_and_bad_settings() -> None:
    data = yaml.safe_load(SHIPPED.read_text())
    dup = {**data, "conditions": [data["conditions"][0], data["conditions"][0]]}
    with pytest.raises(RuleSetError, match="condition ids must be unique"):
        parse_condition_rule_set(dup)
    with pytest.raises(RuleSetError, match="Extra inputs are not permitted"):
        parse_condition_rule_set({**data, "conditons": []})
    with pytest.raises(RuleSetError, match="home_country"):
        parse_condition_rule_set({**data, "home_country": "usa"})
    bad_start = [{**data["conditions"][0], "starts": "page_someone"}]
    with pytest.raises(RuleSetError, match="starts"):
        parse_condition_rule_set({**data, "conditions": bad_start})

"""Customers' alert preferences: validation, the compiled kinds, real-time matches, defaults."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from fiflow.domain.customers import Channel
from fiflow.domain.feeds.conditions import Starts, parse_condition_rule_set
from fiflow.domain.feeds.expressions import InList, Literal
from fiflow.domain.feeds.matches import MatchSource, Origin, plan_alerts
from fiflow.domain.feeds.preferences import (
    TEMPLATES,
    AlertPreferences,
    AmountOver,
    BalanceBelow,
    BalanceRecord,
    PreferenceKind,
    StoredPreferences,
    balance_matches,
    compiled_entry,
    effective,
    kind_form,
    preference_matches,
    slot_nodes,
)
from fiflow.domain.feeds.transactions import FeedSettings, Transaction
from fiflow.domain.rules import RuleSetError

SETTINGS = FeedSettings(home_country="US", home_currency="USD")
SHIPPED = Path(__file__).resolve().parents[2] / "fiflow" / "rules" / "conditions.yaml"
AT = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def txn(**kw: Any) -> Transaction:
    base: dict[str, Any] = {
        "transaction_id": "t1",
        "customer_id": "c1",
        "card_last4": "4242",
        "amount": Decimal("10"),
        "currency": "USD",
        "merchant": "Corner Shop",
        "mcc": "5411",
        "country": "US",
        "card_present": True,
        "status": "approved",
        "occurred_at": AT,
    }
    return Transaction(**{**base, **kw})


def prefs(*entries: dict[str, Any]) -> AlertPreferences:
    return AlertPreferences.model_validate({"preferences": list(entries)})


def kinds(t: Transaction, p: AlertPreferences) -> list[str]:
    return [m.rule_id for m in preference_matches(t, p, SETTINGS)]


# --- validation ----------------------------------------------------------------------------


def test_amounts_are_exact_and_normalised() -> None:
    p = prefs({"kind": "amount_over", "amount": "500.00"}, {"kind": "balance_below", "amount": 0})
    assert p.model_dump(mode="json")["preferences"][0]["amount"] == "500"
    assert p.model_dump(mode="json")["preferences"][1]["amount"] == "0"
    assert prefs({"kind": "amount_over", "amount": "0.1250"}).preferences[0] == AmountOver(
        amount=Decimal("0.125")
    )


@pytest.mark.parametrize(
    ("entry", "problem"),
    [
        ({"kind": "nope"}, "union_tag_invalid"),
        ({"kind": "amount_over", "amount": "-1"}, "greater_than_equal"),
        ({"kind": "amount_over", "amount": "1.00001"}, "invalid_amount"),
        ({"kind": "amount_over", "amount": "NaN"}, "finite_number"),
        ({"kind": "amount_over"}, "missing"),
        ({"kind": "merchant_category", "mccs": ["59670"]}, "string_pattern_mismatch"),
        ({"kind": "merchant_category", "mccs": []}, "too_short"),
        ({"kind": "card_activity", "cards": ["12a4"]}, "string_pattern_mismatch"),
        ({"kind": "balance_below", "amount": "1", "currency": "usd"}, "string_pattern_mismatch"),
        ({"kind": "declined", "channel": "email"}, "enum"),
        ({"kind": "declined", "extra": 1}, "extra_forbidden"),
    ],
)
def test_bad_entries_are_refused(entry: dict[str, Any], problem: str) -> None:
    with pytest.raises(ValidationError) as refused:
        prefs(entry)
    assert problem in {e["type"] for e in refused.value.errors()}


def test_a_kind_at_most_once_and_lists_without_repeats() -> None:
    with pytest.raises(ValidationError) as refused:
        prefs({"kind": "declined"}, {"kind": "declined", "channel": "sms"})
    assert refused.value.errors()[0]["type"] == "duplicate_kind"
    p = prefs({"kind": "merchant_category", "mccs": ["7995", "7995", "4829"]})
    assert p.model_dump()["preferences"][0]["mccs"] == ["7995", "4829"]
    assert prefs({"kind": "card_activity", "cards": ["4242", "1881"]}).cards() == {"4242", "1881"}


# --- the compiled kinds ----------------------------------------------------------------------


@pytest.mark.parametrize("kind", list(TEMPLATES))
def test_every_kind_compiles_with_the_parser_once(kind: PreferenceKind) -> None:
    form = kind_form(kind, SETTINGS)
    assert kind_form(kind, SETTINGS) is form  # compiled once per kind, not per customer
    assert form.condition.windows == ()
    nodes = slot_nodes(form.condition.root, {p for _, p in form.slots})
    assert len(nodes) == len(form.slots) == TEMPLATES[kind].count("{")
    for (name, _), node in zip(form.slots, nodes, strict=True):
        assert isinstance(node, InList if name in ("mccs", "cards") else Literal)


def test_binding_puts_the_entrys_values_in_the_slots() -> None:
    entry = prefs({"kind": "merchant_category", "mccs": ["7995", "4829"]}).preferences[0]
    bound = compiled_entry(entry, SETTINGS)  # type: ignore[arg-type]
    assert isinstance(bound.root, InList) and bound.root.values == ("7995", "4829")
    # The template itself is untouched by binding.
    form = kind_form(PreferenceKind.MERCHANT_CATEGORY, SETTINGS)
    assert isinstance(form.condition.root, InList) and form.condition.root.values == ("0000",)


# --- real-time matches -----------------------------------------------------------------------


def test_each_kind_matches_what_it_says() -> None:
    p = prefs(
        {"kind": "amount_over", "amount": "500"},
        {"kind": "international"},
        {"kind": "card_not_present"},
        {"kind": "declined"},
        {"kind": "merchant_category", "mccs": ["7995"]},
        {"kind": "card_activity", "cards": ["1881"]},
        {"kind": "balance_below", "amount": "100"},
    )
    assert kinds(txn(), p) == []
    assert kinds(txn(amount=Decimal("500")), p) == ["amount_over"]  # at or over
    assert kinds(txn(amount=Decimal("499.9999")), p) == []
    # A declined purchase is not "a purchase at or over": it is a decline.
    assert kinds(txn(amount=Decimal("900"), status="declined"), p) == ["declined"]
    assert kinds(txn(country="FR", currency="EUR"), p) == ["international"]
    assert kinds(txn(card_present=False), p) == ["card_not_present"]
    assert kinds(txn(mcc="7995"), p) == ["merchant_category"]
    assert kinds(txn(card_last4="1881"), p) == ["card_activity"]
    # Every match, in kind order whatever the document's order.
    everything = txn(
        amount=Decimal("1000"), country="MX", card_present=False, mcc="7995", card_last4="1881"
    )
    expected = ["amount_over", "international", "card_not_present", "merchant_category"]
    assert kinds(everything, p) == [*expected, "card_activity"]
    assert kinds(everything, AlertPreferences(preferences=list(reversed(p.preferences)))) == [
        *expected,
        "card_activity",
    ]
    assert kinds(everything, AlertPreferences()) == []


def test_international_is_the_rule_sets_home_country() -> None:
    p = prefs({"kind": "international"})
    assert kinds(txn(country="FR"), p) == ["international"]
    ca = FeedSettings(home_country="CA", home_currency="CAD")
    assert [m.rule_id for m in preference_matches(txn(country="FR"), p, ca)] == ["international"]
    assert preference_matches(txn(country="CA"), p, ca) == []
    assert [m.rule_id for m in preference_matches(txn(country="US"), p, ca)] == ["international"]


def test_a_match_carries_kind_channel_and_quiet_hours() -> None:
    p = prefs(
        {"kind": "declined", "channel": "push", "quiet_hours_ok": True},
        {"kind": "card_activity", "cards": ["4242"]},
    )
    declined, card = preference_matches(txn(status="declined"), p, SETTINGS)
    assert (declined.source, declined.rule_id, declined.starts) == (
        MatchSource.PREFERENCE,
        "declined",
        Starts.INFORMATIONAL_ALERT,
    )
    assert (declined.alert_type, declined.channel, declined.quiet_hours_ok) == (
        "pref_declined",
        Channel.PUSH,
        True,
    )
    assert (card.alert_type, card.channel, card.quiet_hours_ok) == (
        "pref_card_activity",
        None,
        False,
    )
    # The shared contract turns them into one notice: the first named channel, quiet hours
    # only if every match allows them.
    plan = plan_alerts(txn(status="declined"), [declined, card], Origin.STREAM)
    assert plan.notice is not None and plan.fraud_alert is None
    assert plan.notice.items[0].reasons == ["pref_declined", "pref_card_activity"]
    assert (plan.notice.channel, plan.notice.quiet_hours_ok) == (Channel.PUSH, False)


# --- balances ------------------------------------------------------------------------------


def balance(amount: str, currency: str = "USD") -> BalanceRecord:
    return BalanceRecord(
        customer_id="c1", account_id="acc-1", balance=Decimal(amount), currency=currency, as_of=AT
    )


def test_balance_below_is_strict_and_in_the_accounts_currency() -> None:
    anywhere = prefs({"kind": "balance_below", "amount": "100", "channel": "sms"})
    assert balance_matches(balance("100"), anywhere) == []
    [match] = balance_matches(balance("99.9999"), anywhere)
    assert (match.rule_id, match.alert_type, match.channel) == (
        "balance_below",
        "pref_balance_below",
        Channel.SMS,
    )
    assert len(balance_matches(balance("-20", "CAD"), anywhere)) == 1
    dollars = prefs({"kind": "balance_below", "amount": "100", "currency": "USD"})
    assert balance_matches(balance("5", "CAD"), dollars) == []
    assert len(balance_matches(balance("5", "USD"), dollars)) == 1
    assert balance_matches(balance("5"), prefs({"kind": "declined"})) == []
    # Balances are not transactions: the balance kind never matches one.
    assert kinds(txn(amount=Decimal("1")), anywhere) == []
    with pytest.raises(ValidationError):
        balance("1.00001")


# --- the FI's defaults -----------------------------------------------------------------------


def shipped() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(SHIPPED.read_text())
    return data


def test_shipped_defaults_are_valid_and_sensible() -> None:
    defaults = parse_condition_rule_set(shipped()).defaults()
    got = {e.kind: e for e in defaults.preferences}
    assert {"amount_over", "declined", "international", "balance_below"} <= set(got)
    assert isinstance(got["amount_over"], AmountOver) and got["amount_over"].amount > 0
    assert isinstance(got["balance_below"], BalanceBelow)
    assert not defaults.cards()
    # A customer with none stored is screened with them.
    screened = preference_matches(txn(amount=Decimal("750")), defaults, SETTINGS)
    assert [m.rule_id for m in screened] == ["amount_over"]


def test_defaults_are_validated_with_the_rule_set() -> None:
    data = shipped()
    data["default_preferences"] = [{"kind": "card_activity", "cards": ["4242"]}]
    with pytest.raises(RuleSetError, match="card_activity names one customer's card"):
        parse_condition_rule_set(data)
    data["default_preferences"] = [{"kind": "merchant_category", "mccs": ["12345"]}]
    with pytest.raises(RuleSetError, match=r"default_preferences: 0\.merchant_category\.mccs"):
        parse_condition_rule_set(data)
    del data["default_preferences"]
    assert parse_condition_rule_set(data).defaults() == AlertPreferences()


def test_effective_preferences_are_the_stored_ones_else_the_defaults() -> None:
    defaults = prefs({"kind": "declined"})
    mine = StoredPreferences(
        customer_id="c1",
        version=4,
        updated_at=AT,
        defaults=False,
        preferences=prefs({"kind": "international"}),
    )
    assert effective("c1", mine, defaults) is mine
    fallback = effective("c2", None, defaults)
    assert (fallback.version, fallback.defaults, fallback.updated_at) == (0, True, None)
    assert fallback.preferences == defaults

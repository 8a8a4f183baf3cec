"""Notices: their rule section, their texts within SMS limits, and the quiet-hours clock."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, time
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
import yaml

from fiflow.domain.customers import Channel, Customer
from fiflow.domain.feeds.matches import NoticeItem, NoticeRequest, Origin
from fiflow.domain.notices import (
    display_amount,
    notice_channels,
    notice_text,
    quiet_hours_end,
)
from fiflow.domain.rules import NoticeRules, QuietHours, RuleSetError, parse_alert_rule_set
from fiflow.domain.text import sms_segments

SHIPPED = Path(str(resources.files("fiflow") / "rules" / "alerts.yaml"))


@pytest.fixture
def data() -> dict[str, Any]:
    return copy.deepcopy(yaml.safe_load(SHIPPED.read_text(encoding="utf-8")))


def rules_from(data: dict[str, Any]) -> NoticeRules:
    rule_set = parse_alert_rule_set(data, source="alerts.yaml")
    return NoticeRules(
        version=rule_set.version,
        fi_name=rule_set.fi_name,
        policy=rule_set.notices,
        sms_max_segments=rule_set.sms_max_segments,
    )


def item(n: int, merchant: str = "ACME ONLINE", reasons: tuple[str, ...] = ("spend_spike",)) -> Any:
    return NoticeItem(
        transaction_id=f"t{n}",
        reasons=list(reasons),
        amount=f"{n}.00",
        currency="USD",
        merchant=merchant,
        card_last4="4242",
        occurred_at=datetime(2026, 11, 25, tzinfo=UTC),
    )


def request(*items: NoticeItem) -> NoticeRequest:
    return NoticeRequest(
        source_event_id="b-1",
        customer_id="cust-1",
        alert_type="digest",
        items=list(items),
        origin=Origin.BATCH,
    )


def test_a_rule_file_without_a_notices_section_gets_the_shipped_texts(
    data: dict[str, Any],
) -> None:
    shipped = rules_from(copy.deepcopy(data))
    del data["notices"]
    default = rules_from(data)
    assert default.policy.templates == shipped.policy.templates
    assert default.policy.quiet_hours == QuietHours(start=time(21), end=time(8))


@pytest.mark.parametrize(
    ("breaks", "message"),
    [
        (
            lambda n: n["templates"].update(notice_sms="{fi_name}: {code}"),
            "unknown field(s) ['code']",
        ),
        (lambda n: n["templates"].pop("digest_more"), "must define ['digest_more']"),
        (lambda n: n["templates"].update(extra="x"), "unknown template 'extra'"),
        (lambda n: n.update(quiet_hours={"start": 1260, "end": "08:00"}), "in quotes"),
        (lambda n: n.update(quiet_hours={"start": "08:00", "end": "08:00"}), "must differ"),
        (lambda n: n["reasons"].update(spend_spike="x" * 41), "1 to 40 characters"),
        (lambda n: n["templates"].update(digest_sms="{items}" + "x" * 500), "sms_max_segments"),
    ],
)
def test_a_broken_notices_section_is_refused_naming_the_problem(
    data: dict[str, Any], breaks: Any, message: str
) -> None:
    breaks(data["notices"])
    with pytest.raises(RuleSetError) as info:
        parse_alert_rule_set(data, source="alerts.yaml")
    assert message in str(info.value)


def test_a_long_digest_stays_within_the_sms_segments(data: dict[str, Any]) -> None:
    rules = rules_from(data)
    long_name = "The Extremely Long Merchant Name Of A Shop"
    reasons = ("amount_over", "international", "spend_spike", "high_risk_merchant")
    text = notice_text(rules, request(*(item(n, long_name, reasons) for n in range(1, 51))))

    assert sms_segments(text).segments <= rules.sms_max_segments
    assert text.startswith("Fiflow Bank: 50 card transactions to note: $1.00 at ")
    assert text.endswith(" more. No reply needed.")


def test_a_digest_shortens_merchant_names_before_it_lists_fewer(data: dict[str, Any]) -> None:
    data["sms_max_segments"] = 2
    rules = rules_from(data)
    text = notice_text(rules, request(*(item(n, "M" * 40) for n in range(1, 4))))

    assert sms_segments(text).segments <= 2
    assert text.count("MMM...") == 3 and text.endswith("No reply needed.")


def test_amounts_read_as_money() -> None:
    assert display_amount("2150", "USD") == "$2,150.00"
    assert display_amount("-12.345", "EUR") == "-€12.35"
    assert display_amount("99.5", "CHF") == "99.50 CHF"
    assert display_amount("Infinity", "USD") == "Infinity USD"


def test_the_channel_asked_for_comes_first_then_the_other() -> None:
    both = Customer(customer_id="c", phone="+12025550100", push_device_id="d")
    sms_only = Customer(customer_id="c", phone="+12025550100")
    assert notice_channels(both, Channel.PUSH) == [Channel.PUSH, Channel.SMS]
    assert notice_channels(both, None) == [Channel.SMS, Channel.PUSH]
    assert notice_channels(sms_only, Channel.PUSH) == [Channel.SMS]


def test_quiet_hours_end_at_local_morning_across_a_daylight_saving_change() -> None:
    quiet = QuietHours(start=time(21), end=time(8))
    # 00:00 EST on 14 March 2027, the night clocks go forward: 08:00 EDT is 12:00 UTC.
    due = datetime(2027, 3, 14, 5, 0, tzinfo=UTC)
    assert quiet_hours_end(due, quiet, "America/New_York") == datetime(
        2027, 3, 14, 12, 0, tzinfo=UTC
    )
    midday = datetime(2027, 3, 14, 17, 0, tzinfo=UTC)
    assert quiet_hours_end(midday, quiet, "America/New_York") == midday
    assert quiet_hours_end(due, None, "America/New_York") == due
    # An unknown zone counts as UTC: 05:00 UTC is quiet until 08:00 UTC.
    assert quiet_hours_end(due, quiet, "Mars/Olympus") == datetime(2027, 3, 14, 8, 0, tzinfo=UTC)


def test_every_preference_and_shipped_condition_reason_has_a_label(data: dict[str, Any]) -> None:
    """A reason without a label reads as its raw name ("pref amount over") in the SMS."""
    from fiflow.domain.feeds.conditions import Starts, parse_condition_rule_set
    from fiflow.domain.feeds.preferences import PreferenceKind

    conditions_file = SHIPPED.with_name("conditions.yaml")
    conditions = parse_condition_rule_set(yaml.safe_load(conditions_file.read_text()))
    reasons = {f"pref_{kind.value}" for kind in PreferenceKind if kind.value != "balance_below"}
    reasons |= {
        c.alert_type for c in conditions.conditions if c.starts is Starts.INFORMATIONAL_ALERT
    }
    labels = data["notices"]["reasons"]
    assert sorted(reasons - set(labels)) == []

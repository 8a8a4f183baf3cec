"""Trigger rules and contact windows: validation and the pure evaluation."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml

from fiflow.domain.contact_window import next_contact_time
from fiflow.domain.interactions import (
    EventType,
    InteractionChannel,
    InteractionEvent,
    InteractionEventRequest,
    PriorInteraction,
)
from fiflow.domain.rules import RuleSetError
from fiflow.domain.triggers import (
    FollowUpRules,
    Trigger,
    condition_met,
    evaluate,
    in_hours,
    parse_trigger_rule_set,
)

SHIPPED = Path(__file__).resolve().parents[2] / "fiflow" / "rules" / "triggers.yaml"
T0 = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)  # a Wednesday
UTC_ZONE = ZoneInfo("UTC")


def shipped() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(SHIPPED.read_text(encoding="utf-8"))
    return data


def trigger(trigger_id: str) -> Trigger:
    return next(t for t in parse_trigger_rule_set(shipped()).triggers if t.id == trigger_id)


def ev(n: int, type_: EventType, seconds: float = 0, **attrs: Any) -> InteractionEvent:
    at = T0 + timedelta(seconds=seconds)
    return InteractionEvent(
        event_id=f"e{n}",
        channel=InteractionChannel.IVR,
        type=type_,
        attributes=attrs,
        occurred_at=at,
        accepted_at=at,
    )


def test_the_shipped_trigger_rules_are_valid() -> None:
    rules = parse_trigger_rule_set(shipped())
    kinds = {t.when.kind for t in rules.triggers}
    assert kinds == {"event", "all_of", "not_followed_by", "at_least"}
    assert rules.longest_repeat_window() == timedelta(days=7)


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (lambda d: d["triggers"].append(copy.deepcopy(d["triggers"][0])), "unique"),
        (lambda d: d["triggers"][0]["when"].update(kind="sometimes"), "kind"),
        (lambda d: d["triggers"][1]["when"].update(within="P90D"), "at most 30 days"),
        (lambda d: d["triggers"][0]["actions"][1].pop("subject"), "subject"),
        (lambda d: d["triggers"][0]["when"]["event"].update(type="coffee_break"), "type"),
        (lambda d: d["follow_up"].update(fi_timezone="Mars/Olympus"), "unknown time zone"),
        (lambda d: d["follow_up"]["templates"].pop("gave_up_note"), "gave_up_note"),
        (lambda d: d["follow_up"]["templates"].update(follow_up_sms="{phone}"), "phone"),
        (lambda d: d["follow_up"]["quiet_hours"].update(end="21:00"), "differ"),
    ],
)
def test_an_invalid_trigger_file_is_refused_naming_the_problem(change: Any, named: str) -> None:
    data = copy.deepcopy(shipped())
    change(data)
    with pytest.raises(RuleSetError) as err:
        parse_trigger_rule_set(data, source="triggers.yaml")
    assert "triggers.yaml is invalid" in str(err.value) and named in str(err.value)


def test_a_single_event_matches_type_and_attributes_loosely() -> None:
    t = trigger("repeat_tech_support_failure")
    assert condition_met(
        t.when, [ev(1, EventType.SELF_SERVICE_FAILED, topic=" Tech_Support ")], T0
    ).fires
    assert not condition_met(
        t.when, [ev(1, EventType.SELF_SERVICE_FAILED, topic="billing")], T0
    ).fires


def test_all_of_needs_every_event_inside_the_window() -> None:
    t = trigger("card_dispute")
    menu = ev(1, EventType.MENU_SELECTED, topic="card")
    assert not condition_met(t.when, [menu], T0).fires
    soon = ev(2, EventType.KEYWORD_DETECTED, seconds=600, keyword="dispute")
    late = ev(2, EventType.KEYWORD_DETECTED, seconds=3600, keyword="dispute")
    assert condition_met(t.when, [menu, soon], T0).fires
    assert not condition_met(t.when, [menu, late], T0).fires


def test_not_followed_by_waits_for_its_window_then_fires() -> None:
    t = trigger("self_service_abandoned")
    attempt = ev(1, EventType.SELF_SERVICE_ATTEMPTED)
    waiting = condition_met(t.when, [attempt], T0 + timedelta(minutes=5))
    assert not waiting.fires and waiting.recheck_at == T0 + timedelta(minutes=10)
    assert condition_met(t.when, [attempt], T0 + timedelta(minutes=10)).fires
    success = ev(2, EventType.SELF_SERVICE_SUCCEEDED, seconds=300)
    assert not condition_met(t.when, [attempt, success], T0 + timedelta(hours=1)).fires


def test_at_least_counts_inside_a_sliding_window() -> None:
    t = trigger("repeated_menu_loops")
    spread = [ev(i, EventType.MENU_SELECTED, seconds=i * 200) for i in range(3)]  # 0, 200, 400 s
    assert not condition_met(t.when, spread, T0).fires
    tight = [*spread, ev(9, EventType.MENU_SELECTED, seconds=450)]  # 200, 400, 450 s
    assert condition_met(t.when, tight, T0).fires


def test_repeat_caller_needs_the_same_reason_within_its_window() -> None:
    t = trigger("repeat_tech_support_failure")
    events = [ev(1, EventType.SELF_SERVICE_FAILED, topic="tech_support")]
    recent = PriorInteraction(
        interaction_id="a", reason="tech_support", started_at=T0 - timedelta(days=3)
    )
    old = PriorInteraction(
        interaction_id="b", reason="tech_support", started_at=T0 - timedelta(days=8)
    )
    other = PriorInteraction(interaction_id="c", reason="billing", started_at=T0)
    assert evaluate(t, events, [recent], T0).fires
    assert not evaluate(t, events, [old, other], T0).fires


def test_only_during_uses_the_customers_local_time() -> None:
    t = trigger("self_service_abandoned")  # weekdays 08:00-20:00 local
    attempt = ev(1, EventType.SELF_SERVICE_ATTEMPTED)
    later = T0 + timedelta(minutes=10)  # 15:10 UTC
    assert evaluate(t, [attempt], [], later).fires
    assert in_hours(t.only_during, "America/New_York", later)  # 10:10 on a Wednesday
    assert not in_hours(t.only_during, "Asia/Tokyo", later)  # 00:10
    assert in_hours(t.only_during, "Mars/Olympus", later)  # unknown zone: UTC, 15:10
    assert not in_hours(t.only_during, None, datetime(2026, 11, 28, 15, 0, tzinfo=UTC))  # Sat


def test_an_event_request_needs_one_identity_and_bounded_attributes() -> None:
    base = {
        "event_id": "e1",
        "channel": "ivr",
        "type": "menu_selected",
        "occurred_at": T0.isoformat(),
    }
    InteractionEventRequest.model_validate({**base, "customer_id": "cust-0001"})
    with pytest.raises(ValueError, match="exactly one"):
        InteractionEventRequest.model_validate(base)
    with pytest.raises(ValueError, match="exactly one"):
        InteractionEventRequest.model_validate(
            {**base, "customer_id": "cust-0001", "caller": "+12025550101"}
        )
    with pytest.raises(ValueError, match="at most 32"):
        InteractionEventRequest.model_validate(
            {**base, "customer_id": "c", "attributes": {f"a{i}": i for i in range(33)}}
        )


# --- contact windows -------------------------------------------------------------------------


def follow_up_rules(**kw: Any) -> FollowUpRules:
    data = shipped()["follow_up"]
    return FollowUpRules.model_validate({**data, **kw})


def test_quiet_hours_push_contact_to_the_local_morning() -> None:
    rules = follow_up_rules()
    late_evening = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)  # 22:00 in New York
    assert next_contact_time(late_evening, "America/New_York", rules, []) == datetime(
        2026, 11, 25, 13, 0, tzinfo=UTC
    )  # 08:00 EST


@pytest.mark.parametrize(
    ("due", "expected"),
    [
        # Clocks go forward: 08:00 EDT is 12:00 UTC.
        (datetime(2027, 3, 14, 5, 0, tzinfo=UTC), datetime(2027, 3, 15, 12, 0, tzinfo=UTC)),
        # Clocks go back: 08:00 EST is 13:00 UTC.
        (datetime(2027, 11, 7, 5, 30, tzinfo=UTC), datetime(2027, 11, 8, 13, 0, tzinfo=UTC)),
    ],
)
def test_quiet_hours_and_business_days_across_daylight_saving(
    due: datetime, expected: datetime
) -> None:
    # Both dates are Sundays: the FI's business week is Monday to Saturday.
    assert next_contact_time(due, "America/New_York", follow_up_rules(), []) == expected


def test_the_attempts_cap_counts_in_a_rolling_window() -> None:
    rules = follow_up_rules(max_attempts=2, attempt_window="P7D")
    monday_noon = datetime(2026, 11, 23, 17, 0, tzinfo=UTC)  # 12:00 in New York
    tried = [monday_noon - timedelta(days=2), monday_noon - timedelta(days=1)]
    allowed = next_contact_time(monday_noon, "America/New_York", rules, tried)
    assert allowed == tried[0] + timedelta(days=7)


def test_a_window_that_never_opens_gives_none() -> None:
    never = follow_up_rules(
        quiet_hours={"start": "07:00", "end": "23:00"},
        business_hours={"days": ["mon"], "start": "08:00", "end": "20:00"},
        fi_timezone="America/New_York",
    )
    assert next_contact_time(T0, "America/New_York", never, []) is None


def test_without_hours_limits_any_time_is_allowed() -> None:
    rules = follow_up_rules(quiet_hours=None, business_hours=None)
    assert next_contact_time(T0, "Asia/Tokyo", rules, []) == T0

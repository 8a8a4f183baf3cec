"""Trigger rules as data: which events (or missing events) make fiflow act, evaluated purely.

Windows are measured on fiflow's own clock (when an event was accepted), not on the
sender's `occurred_at`: triggers act while the customer is still there, and a timer for
"A not followed by B within T" can only run on the clock that also stamps the events.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from enum import StrEnum
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from fiflow.domain.credit import Product
from fiflow.domain.interactions import AttrValue, EventType, InteractionEvent, PriorInteraction
from fiflow.domain.rules import template_fields, validate_rules
from fiflow.domain.text import DEFAULT_SMS_MAX_SEGMENTS

# 63 at most: a follow-up a trigger starts is "<interaction id (64)>-<trigger id>", 128 in all.
TRIGGER_ID = r"^[a-z][a-z0-9_]{0,62}$"
FOLLOW_UP_TEMPLATE_FIELDS = frozenset({"fi_name", "subject", "reason"})
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class Strict(BaseModel):
    """Rule models refuse unknown keys, so a typo is an error, not a silent default."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class EventMatch(Strict):
    """An event of this type whose attributes include these values (text compares loosely)."""

    type: EventType
    attributes: dict[str, AttrValue] = Field(default_factory=dict)

    def matches(self, event: InteractionEvent) -> bool:
        """Whether the event is one of these."""
        if event.type is not self.type:
            return False
        for key, wanted in self.attributes.items():
            got = event.attributes.get(key)
            if isinstance(wanted, str) and isinstance(got, str):
                if wanted.strip().lower() != got.strip().lower():
                    return False
            elif got != wanted:
                return False
        return True


class Windowed(Strict):
    """A condition over a window of time."""

    within: timedelta

    @field_validator("within")
    @classmethod
    def _bounded(cls, value: timedelta) -> timedelta:
        if not timedelta(0) < value <= timedelta(days=30):
            raise ValueError("must be more than 0 and at most 30 days")
        return value


class OnEvent(Strict):
    """Fires on one matching event."""

    kind: Literal["event"]
    event: EventMatch


class AllOf(Windowed):
    """Fires when every listed event has happened within the window."""

    kind: Literal["all_of"]
    events: list[EventMatch] = Field(min_length=2, max_length=5)


class NotFollowedBy(Windowed):
    """Fires when `first` happened and `then` did not follow within the window."""

    kind: Literal["not_followed_by"]
    first: EventMatch
    then: EventMatch


class AtLeast(Windowed):
    """Fires when `count` matching events happened within the window."""

    kind: Literal["at_least"]
    event: EventMatch
    count: int = Field(ge=2, le=100)


Condition = Annotated[OnEvent | AllOf | NotFollowedBy | AtLeast, Field(discriminator="kind")]


class RepeatCaller(Strict):
    """Only for a customer who was in touch about the same reason within `within` before."""

    within: timedelta
    same_reason: bool = True

    @field_validator("within")
    @classmethod
    def _bounds(cls, value: timedelta) -> timedelta:
        if not timedelta(hours=1) <= value <= timedelta(days=90):
            raise ValueError("repeat_caller.within must be between 1 hour and 90 days")
        return value


class Hours(Strict):
    """Days of the week and a daily span; `start` > `end` spans midnight."""

    days: list[Weekday] = Field(default_factory=lambda: list(WEEKDAYS), min_length=1)
    start: time
    end: time

    @model_validator(mode="after")
    def _not_empty(self) -> Hours:
        if self.start == self.end:
            raise ValueError("start and end must differ")
        return self

    def contains(self, local: datetime) -> bool:
        """Whether a local wall-clock time falls inside (the day is the span's start day)."""
        t = local.time().replace(tzinfo=None)
        if self.start < self.end:
            return WEEKDAYS[local.weekday()] in self.days and self.start <= t < self.end
        # Spans midnight: after start belongs to today, before end to yesterday's span.
        if t >= self.start:
            return WEEKDAYS[local.weekday()] in self.days
        if t < self.end:
            return WEEKDAYS[(local.weekday() - 1) % 7] in self.days
        return False


class ActionType(StrEnum):
    """What a trigger can make fiflow do."""

    NEXT_BEST_ACTION = "next_best_action"
    CRM_NOTE = "crm_note"
    START_FOLLOW_UP = "start_follow_up"
    START_FRAUD_ALERT = "start_fraud_alert"
    START_CREDIT_PREFILL = "start_credit_prefill"


class TriggerAction(Strict):
    """One action of a trigger; which fields apply depends on `type`."""

    type: ActionType
    action: str | None = Field(default=None, pattern=TRIGGER_ID)
    detail: str = Field(default="", max_length=500)
    note: str | None = Field(default=None, max_length=1000)
    after: timedelta | None = None
    subject: str | None = Field(default=None, max_length=200)
    alert_type: str | None = Field(default=None, pattern=r"^[a-z][a-z0-9_]{0,63}$")
    product: Product | None = None

    @model_validator(mode="after")
    def _fields_for_type(self) -> TriggerAction:
        need = {
            ActionType.NEXT_BEST_ACTION: ("action",),
            ActionType.CRM_NOTE: ("note",),
            ActionType.START_FOLLOW_UP: ("after", "subject"),
            ActionType.START_FRAUD_ALERT: ("alert_type",),
            ActionType.START_CREDIT_PREFILL: ("product",),
        }[self.type]
        missing = [f for f in need if getattr(self, f) is None]
        if missing:
            raise ValueError(f"action {self.type.value} needs {', '.join(missing)}")
        if self.after is not None and not timedelta(0) < self.after <= timedelta(days=60):
            raise ValueError("after must be more than 0 and at most 60 days")
        return self


class Trigger(Strict):
    """When to act, and what to do."""

    id: str = Field(pattern=TRIGGER_ID)
    description: str = Field(default="", max_length=500)
    when: Condition
    repeat_caller: RepeatCaller | None = None
    # Only inside these hours of the customer's local time (business hours, say).
    only_during: Hours | None = None
    actions: list[TriggerAction] = Field(min_length=1)


class FollowUpRules(Strict):
    """When and how often a follow-up may reach out."""

    fi_timezone: str
    # None: no limit of that kind (a test setup, or an FI that contacts around the clock).
    business_hours: Hours | None  # in the FI's timezone: contact only inside these
    quiet_hours: Hours | None  # in the customer's timezone: never contact inside these
    max_attempts: int = Field(ge=1, le=10)
    attempt_window: timedelta  # at most max_attempts contacts in any window this long
    retry_after: timedelta
    give_up_after: timedelta  # counted from the first follow-up time
    templates: dict[str, str]
    # A rendered SMS longer than this is shortened (outside values first) before it is sent.
    sms_max_segments: int = Field(default=DEFAULT_SMS_MAX_SEGMENTS, ge=1, le=10)

    @field_validator("fi_timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        zone(value)
        return value

    @model_validator(mode="after")
    def _sane(self) -> FollowUpRules:
        for name in ("attempt_window", "retry_after", "give_up_after"):
            if not timedelta(0) < getattr(self, name) <= timedelta(days=90):
                raise ValueError(f"{name} must be more than 0 and at most 90 days")
        for required in ("follow_up_sms", "follow_up_push", "gave_up_note"):
            if required not in self.templates:
                raise ValueError(f"follow_up.templates must define {required!r}")
        for name, text in self.templates.items():
            unknown = template_fields(text, name=name) - FOLLOW_UP_TEMPLATE_FIELDS
            if unknown:
                raise ValueError(f"template {name!r} uses unknown field(s) {sorted(unknown)}")
        return self


class TriggerRuleSet(Strict):
    """A versioned trigger file."""

    name: str = Field(default="triggers", pattern=r"^triggers$")
    version: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
    fi_name: str = Field(min_length=1, max_length=40)
    # Stragglers after interaction_ended are still taken for this long.
    grace_period: timedelta = timedelta(minutes=2)
    triggers: list[Trigger]
    follow_up: FollowUpRules

    @model_validator(mode="after")
    def _unique_ids(self) -> TriggerRuleSet:
        ids = [t.id for t in self.triggers]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"trigger ids must be unique: {', '.join(dupes)}")
        if not timedelta(0) <= self.grace_period <= timedelta(hours=1):
            raise ValueError("grace_period must be between 0 and 1 hour")
        return self

    def longest_repeat_window(self) -> timedelta | None:
        """How far back prior interactions matter, if any trigger asks."""
        windows = [t.repeat_caller.within for t in self.triggers if t.repeat_caller]
        return max(windows) if windows else None


def zone(name: str) -> ZoneInfo:
    """A time zone by IANA name; ValueError for an unknown one."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r}") from None


def zone_or_utc(name: str | None) -> ZoneInfo:
    """A customer's time zone; UTC when the profile has none or one zoneinfo does not know."""
    try:
        return zone(name or "UTC")
    except ValueError:
        return ZoneInfo("UTC")


def parse_trigger_rule_set(data: Any, *, source: str = "rule file") -> TriggerRuleSet:
    """Validate a trigger rule document."""
    return validate_rules(TriggerRuleSet, data, source=source)


# --- evaluation ------------------------------------------------------------------------------


class Verdict(BaseModel):
    """Whether a trigger fires now, and if not when it should be looked at again."""

    fires: bool
    recheck_at: datetime | None = None
    detail: str = ""


def condition_met(
    cond: OnEvent | AllOf | NotFollowedBy | AtLeast, events: list[InteractionEvent], now: datetime
) -> Verdict:
    """The condition alone, over the interaction's events so far."""
    if isinstance(cond, OnEvent):
        hit = next((e for e in reversed(events) if cond.event.matches(e)), None)
        return Verdict(fires=hit is not None, detail=hit.event_id if hit else "")
    if isinstance(cond, AllOf):
        latest = []
        for match in cond.events:
            found = [e.accepted_at for e in events if match.matches(e)]
            if not found:
                return Verdict(fires=False)
            latest.append(max(found))
        span = max(latest) - min(latest)
        return Verdict(fires=span <= cond.within, detail=f"span {span}")
    if isinstance(cond, AtLeast):
        times = sorted(e.accepted_at for e in events if cond.event.matches(e))
        for i in range(len(times) - cond.count + 1):
            if times[i + cond.count - 1] - times[i] <= cond.within:
                return Verdict(fires=True, detail=f"{cond.count} within {cond.within}")
        return Verdict(fires=False)
    # NotFollowedBy: the earliest `first` whose window has passed with no `then` in it.
    recheck: datetime | None = None
    for first in (e for e in events if cond.first.matches(e)):
        closes = first.accepted_at + cond.within
        followed = any(
            cond.then.matches(e) and first.accepted_at <= e.accepted_at <= closes
            for e in events
            if e is not first
        )
        if followed:
            continue
        if now >= closes:
            return Verdict(fires=True, detail=f"{first.event_id} not followed within {cond.within}")
        recheck = closes if recheck is None else min(recheck, closes)
    return Verdict(fires=False, recheck_at=recheck)


def current_reason(events: list[InteractionEvent]) -> str | None:
    """The interaction's reason: the topic the latest event that names one gave."""
    return next((t for e in reversed(events) if (t := e.topic()) is not None), None)


def latest_reason(events: list[InteractionEvent]) -> str | None:
    """The topic of the event that occurred last among those naming one.

    Unlike `current_reason` it does not depend on the order the events arrived in: a straggler
    delivered late does not replace a newer reason. Equal times go to the greater event ID.
    """
    named = [e for e in events if e.topic() is not None]
    if not named:
        return None
    return max(named, key=lambda e: (e.occurred_at, e.event_id)).topic()


def repeat_of(
    rule: RepeatCaller, reason: str | None, prior: list[PriorInteraction], now: datetime
) -> list[str]:
    """Earlier interactions that make this customer a repeat caller under the rule."""
    since = now - rule.within
    return [
        p.interaction_id
        for p in prior
        if p.started_at >= since and (not rule.same_reason or (reason and p.reason == reason))
    ]


def evaluate(
    trigger: Trigger,
    events: list[InteractionEvent],
    prior: list[PriorInteraction],
    now: datetime,
) -> Verdict:
    """Whether the condition and the repeat-caller rule hold now (hours: see `in_hours`)."""
    verdict = condition_met(trigger.when, events, now)
    if not verdict.fires:
        return verdict
    if trigger.repeat_caller is not None:
        earlier = repeat_of(trigger.repeat_caller, current_reason(events), prior, now)
        if not earlier:
            return Verdict(fires=False, detail="not a repeat caller")
        verdict = Verdict(fires=True, detail=f"{verdict.detail}; repeat of {', '.join(earlier)}")
    return verdict


def in_hours(hours: Hours | None, customer_zone: str | None, at: datetime) -> bool:
    """Whether `at` falls inside the hours, on the customer's local clock (no hours: always)."""
    return hours is None or hours.contains(at.astimezone(zone_or_utc(customer_zone)))

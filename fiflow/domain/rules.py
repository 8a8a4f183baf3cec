"""Alert rules as data: validated models and pure functions over them (no I/O here)."""

from __future__ import annotations

import re
import string
from collections.abc import Collection
from datetime import time, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from fiflow.domain.conversations import AlertCap
from fiflow.domain.phones import is_known_region
from fiflow.domain.text import DEFAULT_SMS_MAX_SEGMENTS, fit_sms, sms_segments

# Values a message template may use; anything else is refused when the file loads.
TEMPLATE_FIELDS = frozenset(
    {"fi_name", "merchant", "amount", "card_last4", "code", "occurred_at", "alert_type"}
)
MAX_WAIT = timedelta(days=30)
_PLAIN_FIELD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class RuleSetError(ValueError):
    """A rule file that cannot be used; the message names the problem."""


class ActionType(StrEnum):
    """What a rule can make fiflow do."""

    RECORD_FRAUD_OUTCOME = "record_fraud_outcome"
    BLOCK_CARD = "block_card"
    UNBLOCK_CARD = "unblock_card"
    SCHEDULE_CALLBACK = "schedule_callback"
    NOTIFY_CUSTOMER = "notify_customer"
    RESEND = "resend"
    ADD_CRM_NOTE = "add_crm_note"


class FraudOutcome(StrEnum):
    """Case outcomes the fraud system knows."""

    GENUINE = "genuine"
    FRAUD = "fraud"
    NO_RESPONSE = "no_response"


class Priority(StrEnum):
    """Contact-center callback priority."""

    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"
    URGENT = "urgent"


class RuleAction(BaseModel):
    """One action in an ordered list; which fields apply depends on `type`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: ActionType
    outcome: FraudOutcome | None = None
    reason: str | None = Field(default=None, max_length=64)
    priority: Priority = Priority.NORMAL
    template: str | None = None
    channel: str | None = Field(default=None, pattern=r"^(other|same)$")
    only_if_pre_blocked: bool = False
    note: str | None = Field(default=None, max_length=500)

    @model_validator(mode="after")
    def _fields_for_type(self) -> RuleAction:
        need = {
            ActionType.RECORD_FRAUD_OUTCOME: ("outcome",),
            ActionType.SCHEDULE_CALLBACK: ("reason",),
            ActionType.NOTIFY_CUSTOMER: ("template",),
            ActionType.RESEND: ("channel",),
            ActionType.ADD_CRM_NOTE: ("note",),
        }.get(self.type, ())
        missing = [f for f in need if getattr(self, f) is None]
        if missing:
            raise ValueError(f"action {self.type.value} needs {', '.join(missing)}")
        return self


class EscalationStep(BaseModel):
    """Wait this long for a reply; if none came, run these actions."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    wait: timedelta
    actions: list[RuleAction] = Field(default_factory=list)

    @model_validator(mode="after")
    def _wait_bounds(self) -> EscalationStep:
        if not timedelta(0) < self.wait <= MAX_WAIT:
            raise ValueError(f"wait must be more than 0 and at most {MAX_WAIT.days} days")
        return self


class AlertPolicy(BaseModel):
    """What one alert type does, for each way it can end."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    pre_block_min_amount: Decimal | None = Field(default=None, gt=0)
    on_confirm: list[RuleAction]
    on_contest: list[RuleAction]
    escalation: list[EscalationStep] = Field(min_length=1)
    on_no_channel: list[RuleAction] = Field(default_factory=list)

    @model_validator(mode="after")
    def _resend_not_last(self) -> AlertPolicy:
        if any(a.type is ActionType.RESEND for a in self.escalation[-1].actions):
            raise ValueError("the last escalation step cannot resend: nothing would wait for it")
        for name in ("on_confirm", "on_contest", "on_no_channel"):
            if any(a.type is ActionType.RESEND for a in getattr(self, name)):
                raise ValueError(f"{name} cannot resend")
        return self

    def reply_window(self) -> timedelta:
        """How long the first message waits for a reply."""
        return self.escalation[0].wait

    def all_actions(self) -> list[RuleAction]:
        """Every action the policy can take."""
        steps = [a for s in self.escalation for a in s.actions]
        return [*self.on_confirm, *self.on_contest, *self.on_no_channel, *steps]


# Informational alerts (InformationalAlertWorkflow): each template and the values it may use.
NOTICE_TEMPLATE_FIELDS: dict[str, frozenset[str]] = {
    # One transaction.
    "notice_sms": frozenset({"fi_name", "amount", "merchant", "card_last4", "reasons"}),
    # Several transactions of one customer in one message: `items` lists them.
    "digest_sms": frozenset({"fi_name", "count", "items"}),
    "digest_item": frozenset({"amount", "merchant", "card_last4", "reasons"}),
    # After the listed items, how many more there were.
    "digest_more": frozenset({"more"}),
    "push_title": frozenset({"fi_name"}),
    # A balance below the customer's alert amount (settlement files); optional in a rule
    # file: the shipped text serves rule sets written before it existed.
    "balance_sms": frozenset(
        {"fi_name", "account_last4", "balance", "threshold", "as_of", "reasons"}
    ),
}
OPTIONAL_NOTICE_TEMPLATES = frozenset({"balance_sms"})
REASON_LABEL_MAX = 40
_SHIPPED_NOTICE_TEMPLATES = {
    "notice_sms": (
        "{fi_name}: {amount} at {merchant} on card ending {card_last4} ({reasons}). "
        "No reply needed."
    ),
    "digest_sms": "{fi_name}: {count} card transactions to note: {items}. No reply needed.",
    "digest_item": "{amount} at {merchant} ({reasons})",
    "digest_more": "+{more} more",
    "push_title": "{fi_name}",
    "balance_sms": (
        "{fi_name}: the balance of account ending {account_last4} is {balance} "
        "(below your {threshold} alert). No reply needed."
    ),
}


class QuietHours(BaseModel):
    """A nightly span of the customer's local time (`start` > `end` spans midnight)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    start: time
    end: time

    @field_validator("start", "end", mode="before")
    @classmethod
    def _quoted(cls, value: Any) -> Any:
        # Unquoted, YAML 1.1 reads 21:00 as the number 1260 (sexagesimal), which pydantic
        # would take as seconds past midnight.
        if isinstance(value, int | float):
            raise ValueError('write the time in quotes, e.g. "21:00"')
        return value

    @model_validator(mode="after")
    def _not_empty(self) -> QuietHours:
        if self.start == self.end:
            raise ValueError("start and end must differ")
        return self


class NoticePolicy(BaseModel):
    """How informational alerts read: texts, the reason labels, quiet hours, digest size."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # In the customer's own time zone; a notice due inside waits for the end, unless every
    # match that made it allows quiet hours. None: notices go out at any hour.
    quiet_hours: QuietHours | None = QuietHours(start=time(21), end=time(8))
    # A digest lists at most this many transactions, then says how many more.
    digest_max_items: int = Field(default=3, ge=1, le=10)
    templates: dict[str, str] = Field(default_factory=lambda: dict(_SHIPPED_NOTICE_TEMPLATES))
    # Alert type (a condition's or a preference kind's) -> what the customer reads; a type
    # missing here reads as its name with spaces.
    reasons: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _texts_valid(self) -> NoticePolicy:
        missing = sorted(
            set(NOTICE_TEMPLATE_FIELDS) - OPTIONAL_NOTICE_TEMPLATES - set(self.templates)
        )
        if missing:
            raise ValueError(f"notices.templates must define {missing}")
        for name, text in self.templates.items():
            allowed = NOTICE_TEMPLATE_FIELDS.get(name)
            if allowed is None:
                raise ValueError(
                    f"notices.templates: unknown template {name!r}; "
                    f"known: {sorted(NOTICE_TEMPLATE_FIELDS)}"
                )
            unknown = template_fields(text, name=name) - allowed
            if unknown:
                raise ValueError(
                    f"notice template {name!r} uses unknown field(s) {sorted(unknown)}; "
                    f"allowed: {sorted(allowed)}"
                )
        for alert_type, label in self.reasons.items():
            if not re.fullmatch(r"[a-z][a-z0-9_]{0,63}", alert_type):
                raise ValueError(f"notices.reasons: {alert_type!r} is not an alert type name")
            if not 0 < len(label) <= REASON_LABEL_MAX or label != " ".join(label.split()):
                raise ValueError(
                    f"notices.reasons.{alert_type}: a label is one line of 1 to "
                    f"{REASON_LABEL_MAX} characters"
                )
        return self

    def template(self, name: str) -> str:
        """A notice template: the rule file's, or the shipped one for an optional template."""
        return self.templates.get(name) or _SHIPPED_NOTICE_TEMPLATES[name]


class AlertRuleSet(BaseModel):
    """A versioned alert rule file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(default="alerts", pattern=r"^alerts$")
    version: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
    fi_name: str = Field(min_length=1, max_length=40)
    # A rendered SMS longer than this is shortened (outside values first) before it is sent.
    sms_max_segments: int = Field(default=DEFAULT_SMS_MAX_SEGMENTS, ge=1, le=10)
    # Countries (ISO 3166 alpha-2) whose numbers may be texted at all; any other is never
    # texted, by any flow. Read at the moment of sending, so removing a country takes effect
    # for runs already in flight too.
    sms_countries: list[str] = Field(default_factory=lambda: ["US", "CA"], min_length=1)
    # Alerts per phone number per window as texts of their own; the rest merge into a digest.
    sms_alert_cap: AlertCap = Field(default_factory=AlertCap)
    templates: dict[str, str]
    alert_types: dict[str, AlertPolicy] = Field(min_length=1)
    # Informational alerts (no reply expected); the defaults serve rule files without it.
    notices: NoticePolicy = Field(default_factory=NoticePolicy)

    @field_validator("sms_countries")
    @classmethod
    def _known_countries(cls, value: list[str]) -> list[str]:
        unknown = [c for c in value if not is_known_region(c)]
        if unknown:
            raise ValueError(
                f"sms_countries: {unknown} are not ISO 3166 alpha-2 codes with phone numbers "
                "(write them in capitals, e.g. US, CA, GB)"
            )
        return value

    @model_validator(mode="after")
    def _templates_valid(self) -> AlertRuleSet:
        for name, text in self.templates.items():
            unknown = template_fields(text, name=name) - TEMPLATE_FIELDS
            if unknown:
                raise ValueError(
                    f"template {name!r} uses unknown field(s) {sorted(unknown)}; "
                    f"allowed: {sorted(TEMPLATE_FIELDS)}"
                )
            # A template that is too long on its own would always be cut at the end.
            empty = {f: self.fi_name if f == "fi_name" else "" for f in TEMPLATE_FIELDS}
            fixed = render(text, empty)
            if sms_segments(fixed).segments > self.sms_max_segments:
                raise ValueError(
                    f"template {name!r} is longer than sms_max_segments "
                    f"({self.sms_max_segments}) even without its values"
                )
        for required in ("alert_sms", "alert_push_title", "alert_push_body"):
            if required not in self.templates:
                raise ValueError(f"templates must define {required!r}")
        for alert_type, policy in self.alert_types.items():
            for action in policy.all_actions():
                if action.template and action.template not in self.templates:
                    raise ValueError(
                        f"alert type {alert_type!r} uses template {action.template!r}, "
                        "which is not defined"
                    )
        return self

    @model_validator(mode="after")
    def _notice_texts_fit(self) -> AlertRuleSet:
        for name in ("notice_sms", "digest_sms", "balance_sms"):
            text = self.notices.template(name)
            fields = NOTICE_TEMPLATE_FIELDS[name]
            fixed = render(text, {f: self.fi_name if f == "fi_name" else "" for f in fields})
            if sms_segments(fixed).segments > self.sms_max_segments:
                raise ValueError(
                    f"notice template {name!r} is longer than sms_max_segments "
                    f"({self.sms_max_segments}) even without its values"
                )
        return self

    def policy(self, alert_type: str) -> AlertPolicy | None:
        """The policy for an alert type, if the rules know it."""
        return self.alert_types.get(alert_type)


class AlertRules(BaseModel):
    """What one alert needs from the rule set: its policy, the texts and the version."""

    version: str
    fi_name: str
    templates: dict[str, str]
    policy: AlertPolicy
    sms_max_segments: int = DEFAULT_SMS_MAX_SEGMENTS
    sms_alert_cap: AlertCap | None = None


class NoticeRules(BaseModel):
    """What one informational alert needs from the alert rule set: its texts and the version."""

    version: str
    fi_name: str
    policy: NoticePolicy
    sms_max_segments: int = DEFAULT_SMS_MAX_SEGMENTS


def template_fields(text: str, *, name: str | None = None) -> set[str]:
    """Field names a template refers to; ValueError unless every field is a plain `{name}`."""
    what = f"template {name!r}" if name is not None else f"template {text!r}"
    try:
        parsed = list(string.Formatter().parse(text))
    except ValueError as exc:
        raise ValueError(f"{what} is malformed: {exc}") from exc
    fields: set[str] = set()
    for _, field, spec, conversion in parsed:
        if field is None:
            continue
        problem = _field_problem(field, spec, conversion)
        if problem:
            raise ValueError(f"{what} {problem}; only plain {{name}} fields are allowed")
        fields.add(field)
    return fields


def _field_problem(field: str, spec: str | None, conversion: str | None) -> str | None:
    """Why a parsed field is not a plain `{name}`, or None."""
    # str.format reaches attributes, items and positional arguments from these forms,
    # and format specs can pad a value to any width: a template gets none of them.
    if field == "" or field.isdigit():
        return f"uses a positional field {{{field}}}"
    if "." in field or "[" in field:
        return f"uses attribute or index access {{{field}}}"
    if not _PLAIN_FIELD.fullmatch(field):
        return f"uses an invalid field name {{{field}}}"
    if conversion:
        return f"uses a conversion {{{field}!{conversion}}}"
    if spec:
        return f"uses a format spec {{{field}:{spec}}}"
    return None


def render(template: str, values: dict[str, str]) -> str:
    """Fill a validated template; values go in as they are, never formatted or looked into."""
    parts: list[str] = []
    for literal, field, spec, conversion in string.Formatter().parse(template):
        parts.append(literal)
        if field is None:
            continue
        problem = _field_problem(field, spec, conversion)
        if problem:
            raise ValueError(f"template {template!r} {problem}")
        parts.append(str(values[field]))
    return "".join(parts)


def render_sms(
    template: str,
    values: dict[str, str],
    *,
    outside: Collection[str],
    max_segments: int = DEFAULT_SMS_MAX_SEGMENTS,
) -> str:
    """Fill a template as an SMS within max_segments, shortening the outside values first."""
    return fit_sms(
        lambda v: render(template, v), values, outside=outside, max_segments=max_segments
    )


M = TypeVar("M", bound=BaseModel)


def validate_rules(model: type[M], data: Any, *, source: str) -> M:
    """Validate raw rule data; pydantic's errors become one message naming each problem."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err["loc"]) or "(top level)"
            problems.append(f"{where}: {err['msg']}")
        raise RuleSetError(f"{source} is invalid: " + "; ".join(problems)) from None


def parse_alert_rule_set(data: Any, *, source: str = "rule file") -> AlertRuleSet:
    """Validate an alert rule document."""
    return validate_rules(AlertRuleSet, data, source=source)

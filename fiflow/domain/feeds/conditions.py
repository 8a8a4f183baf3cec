"""The FI's alert conditions as data (fiflow/rules/conditions.yaml), validated at load.

Each condition's `when` is written in the condition language (fiflow.domain.feeds.expressions)
and compiled when the rule set is loaded, so an invalid condition is refused at activation
(and by `fiflow rules check`) with a message naming the condition, the problem and where.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, model_validator

from fiflow.domain.feeds.expressions import CompiledCondition, ConditionError, compile_condition
from fiflow.domain.feeds.transactions import COUNTRY, CURRENCY, FeedSettings, Transaction
from fiflow.domain.feeds.windows import Windows, evaluate, observe
from fiflow.domain.rules import validate_rules

if TYPE_CHECKING:
    from fiflow.domain.feeds.preferences import AlertPreferences

CONDITION_ID = r"^[a-z][a-z0-9_]{0,62}$"


class Starts(StrEnum):
    """What a matched condition starts."""

    # The existing FraudAlertWorkflow: the customer must reply.
    FRAUD_ALERT = "fraud_alert"
    # A light notice with no reply expected.
    INFORMATIONAL_ALERT = "informational_alert"


class Channel(StrEnum):
    """How an informational alert reaches the customer (None: the customer's preference)."""

    SMS = "sms"
    PUSH = "push"


class Condition(BaseModel):
    """One FI condition: when it matches, and what it starts."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=CONDITION_ID)
    description: str = Field(default="", max_length=500)
    when: str = Field(min_length=1, max_length=2000)
    starts: Starts
    # For fraud alerts an alert type of the alert rules (card_fraud_suspected, ...).
    alert_type: str = Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")
    channel: Channel | None = None


class ConditionRuleSet(BaseModel):
    """A versioned set of FI alert conditions."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(default="conditions", pattern=r"^conditions$")
    version: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
    # "international" means a country other than this one (ISO 3166 alpha-2).
    home_country: str = Field(pattern=COUNTRY)
    # "foreign_currency" means a currency other than the card's home currency, this by default.
    home_currency: str = Field(default="USD", pattern=CURRENCY)
    conditions: list[Condition] = Field(min_length=1, max_length=200)
    # The alert preferences of a customer who stored none (fiflow.domain.feeds.preferences);
    # no card_activity here: a default cannot name a customer's card.
    default_preferences: list[dict[str, Any]] = Field(default_factory=list, max_length=20)
    _compiled: tuple[CompiledCondition, ...] = PrivateAttr(default=())
    _defaults: Any = PrivateAttr(default=None)

    @property
    def settings(self) -> FeedSettings:
        """The settings derived fields depend on."""
        return FeedSettings(home_country=self.home_country, home_currency=self.home_currency)

    @model_validator(mode="after")
    def _compile(self) -> ConditionRuleSet:
        ids = [c.id for c in self.conditions]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ValueError(f"condition ids must be unique: {', '.join(duplicates)}")
        compiled = []
        for c in self.conditions:
            try:
                compiled.append(compile_condition(c.when, self.settings))
            except ConditionError as exc:
                raise ValueError(f"condition {c.id!r}: {exc}") from None
        self._compiled = tuple(compiled)
        self._defaults = _default_preferences(self.default_preferences)
        return self

    def defaults(self) -> AlertPreferences:
        """The FI's default alert preferences, for customers who stored none."""
        defaults: AlertPreferences = self._defaults
        return defaults

    def compiled(self) -> CompiledRules:
        """The conditions compiled, for either engine."""
        return CompiledRules(
            version=self.version,
            conditions=tuple(zip(self.conditions, self._compiled, strict=True)),
        )


@dataclass(frozen=True)
class CompiledRules:
    """A rule set's conditions, each with its compiled form."""

    version: str
    conditions: tuple[tuple[Condition, CompiledCondition], ...]

    def horizon(self, per: str) -> timedelta:
        """The longest window over a key across all conditions."""
        return max(
            (c.horizon(per) for _, c in self.conditions),  # type: ignore[arg-type]
            default=timedelta(0),
        )

    def observe(self, windows: Windows, txn: Transaction) -> Windows:
        """The window states with the transaction added, kept as long as any window needs."""
        return observe(windows, txn, card=self.horizon("card"), customer=self.horizon("customer"))

    def matches(self, txn: Transaction, windows: Windows) -> list[Condition]:
        """The conditions the transaction meets, in rule-file order."""
        return [c for c, compiled in self.conditions if evaluate(compiled, txn, windows)]


def _default_preferences(entries: list[dict[str, Any]]) -> AlertPreferences:
    # Imported here: preferences builds on this module (Starts) and on matches, which does too.
    from fiflow.domain.feeds.preferences import AlertPreferences, CardActivity

    try:
        prefs = AlertPreferences.model_validate({"preferences": entries})
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'][1:]) or 'default_preferences'}: {e['msg']}"
            for e in exc.errors()
        )
        raise ValueError(f"default_preferences: {problems}") from None
    if any(isinstance(e, CardActivity) for e in prefs.preferences):
        raise ValueError("default_preferences: card_activity names one customer's card")
    return prefs


def parse_condition_rule_set(data: Any, *, source: str = "rule file") -> ConditionRuleSet:
    """Validate a conditions rule document (every `when` compiled)."""
    return validate_rules(ConditionRuleSet, data, source=source)

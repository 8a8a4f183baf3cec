"""Customers' own alert preferences: typed entries, each kind a template in the condition language.

A customer's preferences are one document (`AlertPreferences`): a list of entries, at most
one per kind, each saying its parameters, the channel (sms, push or the customer's
preferred one) and whether it may arrive in the customer's quiet hours. A customer with no
document gets the FI's defaults (`default_preferences` in fiflow/rules/conditions.yaml).

Every transaction kind is a template written in the condition language
(fiflow.domain.feeds.expressions), compiled once per kind with the parser, never per
customer. Its parameters are *slots*: the nodes of the compiled tree that take a customer's
values. The real-time path binds an entry's values into those nodes and walks the tree with
the evaluator of fiflow.domain.feeds.windows; the batch path
(fiflow.integrations.screening.screen_preferences) turns the same tree into one Polars
expression per kind whose slots read parameter columns of a long-format preferences frame.
A property test feeds both the same transactions and requires the same matches.

"A balance below an amount" is not about a transaction but a settlement/balance record
(`BalanceRecord`), a different record kind the transaction language has no fields for; its
one comparison (`balance < amount`, in the account's currency) is `balance_matches` here and
a vectorised twin in screening. Amounts are exact: Decimals here, integers of 1/10,000 in
Polars.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from decimal import Decimal
from enum import StrEnum
from functools import lru_cache
from typing import Annotated, Literal, Union

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

from fiflow.domain.customers import Channel
from fiflow.domain.feeds.conditions import Starts
from fiflow.domain.feeds.expressions import (
    And,
    Compare,
    CompiledCondition,
    InList,
    Node,
    Not,
    Or,
    Value,
    compile_condition,
)
from fiflow.domain.feeds.expressions import Literal as LiteralNode
from fiflow.domain.feeds.matches import Match, MatchSource
from fiflow.domain.feeds.transactions import (
    AMOUNT_LIMIT,
    AMOUNT_PLACES,
    CURRENCY,
    LAST4,
    MCC,
    FeedSettings,
    Transaction,
)
from fiflow.domain.feeds.windows import Windows, evaluate


class PreferenceKind(StrEnum):
    """What a preference watches for; the order is the order matches are listed in."""

    AMOUNT_OVER = "amount_over"
    INTERNATIONAL = "international"
    CARD_NOT_PRESENT = "card_not_present"
    DECLINED = "declined"
    MERCHANT_CATEGORY = "merchant_category"
    CARD_ACTIVITY = "card_activity"
    BALANCE_BELOW = "balance_below"


KIND_ORDER: dict[str, int] = {k.value: i for i, k in enumerate(PreferenceKind)}

# Each transaction kind as a condition; `{name}` marks a parameter slot (a number, or a list
# of strings inside `[...]`). docs/feeds.md lists them for FI staff.
TEMPLATES: dict[PreferenceKind, str] = {
    PreferenceKind.AMOUNT_OVER: 'status = "approved" and amount >= {amount}',
    PreferenceKind.INTERNATIONAL: "international",
    PreferenceKind.CARD_NOT_PRESENT: "not card_present",
    PreferenceKind.DECLINED: 'status = "declined"',
    PreferenceKind.MERCHANT_CATEGORY: "mcc in [{mccs}]",
    PreferenceKind.CARD_ACTIVITY: "card_last4 in [{cards}]",
}
# What a slot holds while the template is compiled: a value of the right shape, replaced
# by the customer's before evaluation.
_PLACEHOLDERS = {"amount": "0", "mccs": '"0000"', "cards": '"0000"'}
_SLOT = re.compile(r"\{([a-z_]+)\}")

MAX_MCCS = 50
MAX_CARDS = 10


class PreferenceChannel(StrEnum):
    """Where a preference's alert goes."""

    SMS = "sms"
    PUSH = "push"
    PREFERRED = "preferred"  # the channel the customer prefers in the CRM


def _amount(value: Decimal) -> Decimal:
    if not value.is_finite():
        raise PydanticCustomError("invalid_amount", "an amount must be a finite number")
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -AMOUNT_PLACES:
        raise PydanticCustomError(
            "invalid_amount",
            "an amount has at most {places} decimal places",
            {"places": AMOUNT_PLACES},
        )
    if value == 0:
        return Decimal(0)
    # Normalised so the stored document and the bound literal read the same ("500", "0.5").
    return value.quantize(Decimal(1)) if value == value.to_integral() else value.normalize()


Amount = Annotated[Decimal, Field(ge=0, le=AMOUNT_LIMIT), AfterValidator(_amount)]
MccCode = Annotated[str, Field(pattern=MCC, description="A merchant category code: 4 digits.")]
Last4 = Annotated[str, Field(pattern=LAST4, description="A card's last four digits.")]


def _unique(values: list[str]) -> list[str]:
    return list(dict.fromkeys(values))


class _Entry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    channel: PreferenceChannel = Field(
        default=PreferenceChannel.PREFERRED,
        description="sms, push, or `preferred`: the customer's preferred channel.",
    )
    quiet_hours_ok: bool = Field(
        default=False, description="Whether it may reach the customer in their quiet hours."
    )

    def parameters(self) -> dict[str, Value | tuple[str, ...]]:
        """The values of the kind's template slots."""
        return {}

    def match(self) -> Match:
        """The match this entry yields (one per transaction or record it fires on)."""
        kind: str = getattr(self, "kind")  # noqa: B009 - every subclass declares it
        return Match(
            source=MatchSource.PREFERENCE,
            rule_id=kind,
            starts=Starts.INFORMATIONAL_ALERT,
            alert_type=f"pref_{kind}",
            channel=None if self.channel is PreferenceChannel.PREFERRED else Channel(self.channel),
            quiet_hours_ok=self.quiet_hours_ok,
        )


class AmountOver(_Entry):
    """An approved purchase at or over an amount (in the transaction's currency)."""

    kind: Literal["amount_over"] = "amount_over"
    amount: Amount = Field(description="Exact decimal, at least 0.", examples=["500"])

    def parameters(self) -> dict[str, Value | tuple[str, ...]]:
        """The amount slot."""
        return {"amount": self.amount}


class International(_Entry):
    """A transaction in a country other than the FI's home country."""

    kind: Literal["international"] = "international"


class CardNotPresent(_Entry):
    """A card-not-present (online or phone) transaction."""

    kind: Literal["card_not_present"] = "card_not_present"


class Declined(_Entry):
    """A declined transaction."""

    kind: Literal["declined"] = "declined"


class MerchantCategory(_Entry):
    """A transaction at a merchant of one of these categories (ISO 18245 MCCs)."""

    kind: Literal["merchant_category"] = "merchant_category"
    mccs: Annotated[list[MccCode], AfterValidator(_unique)] = Field(
        min_length=1, max_length=MAX_MCCS, examples=[["7995", "4829"]]
    )

    def parameters(self) -> dict[str, Value | tuple[str, ...]]:
        """The category list slot."""
        return {"mccs": tuple(self.mccs)}


class CardActivity(_Entry):
    """Every transaction on the named cards (the customer's own, by last four digits)."""

    kind: Literal["card_activity"] = "card_activity"
    cards: Annotated[list[Last4], AfterValidator(_unique)] = Field(
        min_length=1, max_length=MAX_CARDS, examples=[["4242"]]
    )

    def parameters(self) -> dict[str, Value | tuple[str, ...]]:
        """The card list slot."""
        return {"cards": tuple(self.cards)}


class BalanceBelow(_Entry):
    """A settlement balance below an amount (in the account's currency, or only this one)."""

    kind: Literal["balance_below"] = "balance_below"
    amount: Amount = Field(description="Exact decimal, at least 0.", examples=["100"])
    currency: str | None = Field(
        default=None,
        pattern=CURRENCY,
        description="Only accounts in this currency; null: every account, in its own currency.",
    )


PreferenceEntry = Annotated[
    Union[  # noqa: UP007 - a discriminated union reads better spelled out
        AmountOver,
        International,
        CardNotPresent,
        Declined,
        MerchantCategory,
        CardActivity,
        BalanceBelow,
    ],
    Field(discriminator="kind"),
]
TransactionEntry = (
    AmountOver | International | CardNotPresent | Declined | MerchantCategory | CardActivity
)
TRANSACTION_KINDS = frozenset(TEMPLATES)


class AlertPreferences(BaseModel):
    """One customer's alert preferences: at most one entry per kind."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    preferences: list[PreferenceEntry] = Field(
        default_factory=list,
        max_length=len(PreferenceKind),
        description="What to alert on; an empty list turns every preference alert off.",
    )

    @model_validator(mode="after")
    def _one_per_kind(self) -> AlertPreferences:
        kinds = [e.kind for e in self.preferences]
        repeated = sorted({k for k in kinds if kinds.count(k) > 1})
        if repeated:
            raise PydanticCustomError(
                "duplicate_kind",
                "each kind at most once; repeated: {kinds}",
                {"kinds": ", ".join(repeated)},
            )
        return self

    def entry(self, kind: PreferenceKind | str) -> PreferenceEntry | None:
        """The entry of a kind, if the customer has one."""
        return next((e for e in self.preferences if e.kind == kind), None)

    def ordered(self) -> list[PreferenceEntry]:
        """The entries in kind order (the order matches are listed in)."""
        return sorted(self.preferences, key=lambda e: KIND_ORDER[e.kind])

    def cards(self) -> set[str]:
        """Every card the preferences name (each must be the customer's)."""
        found: set[str] = set()
        for e in self.preferences:
            if isinstance(e, CardActivity):
                found.update(e.cards)
        return found


class StoredPreferences(BaseModel):
    """A customer's preferences as stored, or the FI's defaults (version 0)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    customer_id: str
    version: int = Field(ge=0, description="Incremented by every change; 0: the FI's defaults.")
    updated_at: AwareDatetime | None = Field(description="When last changed; null for defaults.")
    defaults: bool = Field(description="True: nothing is stored; these are the FI's defaults.")
    preferences: AlertPreferences


def effective(
    customer_id: str, stored: StoredPreferences | None, defaults: AlertPreferences
) -> StoredPreferences:
    """The customer's stored preferences, or the FI's defaults when none are stored."""
    if stored is not None:
        return stored
    return StoredPreferences(
        customer_id=customer_id, version=0, updated_at=None, defaults=True, preferences=defaults
    )


# --- the compiled kinds -------------------------------------------------------------------


@dataclass(frozen=True)
class KindForm:
    """A kind's template compiled once; `slots` name the nodes that take parameters.

    A slot is the position of the node in the compiled tree: a number literal for a scalar
    parameter, an `in [...]` list for a list parameter.
    """

    kind: PreferenceKind
    condition: CompiledCondition
    slots: tuple[tuple[str, int], ...]

    def bind(self, values: dict[str, Value | tuple[str, ...]]) -> CompiledCondition:
        """The condition with an entry's values in its slots (what the real-time path runs)."""
        if not self.slots:
            return self.condition
        by_position = {position: values[name] for name, position in self.slots}
        return replace(self.condition, root=_bind(self.condition.root, by_position))


def _bind(node: Node, values: dict[int, Value | tuple[str, ...]]) -> Node:
    if isinstance(node, LiteralNode) and node.position in values:
        value = values[node.position]
        assert not isinstance(value, tuple)
        return replace(node, value=value)
    if isinstance(node, InList) and node.position in values:
        found = values[node.position]
        assert isinstance(found, tuple)
        return replace(node, values=found)
    if isinstance(node, Compare):
        return replace(node, left=_bind(node.left, values), right=_bind(node.right, values))
    if isinstance(node, And | Or):
        return replace(node, parts=tuple(_bind(p, values) for p in node.parts))
    if isinstance(node, Not):
        return replace(node, part=_bind(node.part, values))
    return node


def slot_nodes(root: Node, positions: set[int]) -> list[Node]:
    """The nodes of a tree at these slot positions (literals and `in` lists)."""
    found: list[Node] = []

    def walk(n: Node) -> None:
        if isinstance(n, LiteralNode | InList) and n.position in positions:
            found.append(n)
        if isinstance(n, Compare):
            walk(n.left)
            walk(n.right)
        elif isinstance(n, InList):
            walk(n.operand)
        elif isinstance(n, And | Or):
            for p in n.parts:
                walk(p)
        elif isinstance(n, Not):
            walk(n.part)

    walk(root)
    return found


@lru_cache(maxsize=64)
def kind_form(kind: PreferenceKind, settings: FeedSettings) -> KindForm:
    """A transaction kind's template, parsed and type-checked by the condition parser."""
    template = TEMPLATES[kind]
    text, slots, at = "", [], 0
    for m in _SLOT.finditer(template):
        text += template[at : m.start()]
        name = m.group(1)
        if text.rstrip().endswith("["):
            # A list slot: the `in` node's position is that of its `in` keyword.
            position = text.rstrip()[:-1].rstrip().rfind("in") + 1
        else:
            position = len(text) + 1
        slots.append((name, position))
        text += _PLACEHOLDERS[name]
        at = m.end()
    text += template[at:]
    condition = compile_condition(text, settings)
    nodes = slot_nodes(condition.root, {p for _, p in slots})
    if len(nodes) != len(slots) or condition.windows:
        raise RuntimeError(f"preference template {kind} has unplaceable slots or windows")
    return KindForm(kind, condition, tuple(slots))


def compiled_entry(entry: TransactionEntry, settings: FeedSettings) -> CompiledCondition:
    """An entry's condition: its kind's compiled template with the entry's values bound."""
    return _bound(entry.kind, settings, tuple(entry.parameters().items()))


@lru_cache(maxsize=4096)
def _bound(
    kind: str, settings: FeedSettings, values: tuple[tuple[str, Value | tuple[str, ...]], ...]
) -> CompiledCondition:
    # Customers share few distinct parameter sets (500, 1000, ...): bind each once.
    return kind_form(PreferenceKind(kind), settings).bind(dict(values))


def preference_matches(
    txn: Transaction, prefs: AlertPreferences, settings: FeedSettings
) -> list[Match]:
    """The customer's preferences the transaction meets, in kind order (real-time path)."""
    found: list[Match] = []
    windows: Windows | None = None
    for entry in prefs.ordered():
        if isinstance(entry, BalanceBelow):
            continue
        # Preference templates have no aggregates: empty windows are all they read.
        windows = windows or Windows.empty_for(txn)
        if evaluate(compiled_entry(entry, settings), txn, windows):
            found.append(entry.match())
    return found


# --- balances -----------------------------------------------------------------------------


class BalanceRecord(BaseModel):
    """One settlement/balance record: an account's (or card's) balance at a moment."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    customer_id: str = Field(min_length=1, max_length=64)
    account_id: str = Field(
        min_length=1, max_length=64, description="The account or card reference it is of."
    )
    balance: Decimal = Field(ge=-AMOUNT_LIMIT, le=AMOUNT_LIMIT)
    currency: str = Field(pattern=CURRENCY)
    as_of: AwareDatetime

    @model_validator(mode="after")
    def _places(self) -> BalanceRecord:
        exponent = self.balance.as_tuple().exponent
        if not self.balance.is_finite() or (
            isinstance(exponent, int) and exponent < -AMOUNT_PLACES
        ):
            raise ValueError(f"balance must be finite with at most {AMOUNT_PLACES} places")
        return self


def balance_below(entry: BalanceBelow, record: BalanceRecord) -> bool:
    """Whether a balance record is below the entry's amount (strictly; same currency only)."""
    if entry.currency is not None and entry.currency != record.currency:
        return False
    return record.balance < entry.amount


def balance_matches(record: BalanceRecord, prefs: AlertPreferences) -> list[Match]:
    """The customer's preferences a balance record meets (real-time path)."""
    entry = prefs.entry(PreferenceKind.BALANCE_BELOW)
    if isinstance(entry, BalanceBelow) and balance_below(entry, record):
        return [entry.match()]
    return []

"""The documented transaction schema every condition and preference is written against.

A transaction is one card authorisation as the FI's card system reports it. Fields a rule can
name are listed in FIELDS (with their type); `international` and `foreign_currency` are derived
from the rule set's home country and home currency (see `FeedSettings`). docs/feeds.md is the
reference for FI staff.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

# Amounts carry at most this many decimal places (ISO 4217 minor units never exceed 4), so
# both engines can compare them exactly as integers of 1/10,000 of a unit.
AMOUNT_PLACES = 4
AMOUNT_SCALE = 10**AMOUNT_PLACES
# Keeps scaled amounts (and sums of a day's worth of them) far inside a 64-bit integer.
AMOUNT_LIMIT = Decimal(10) ** 12

CURRENCY = r"^[A-Z]{3}$"
COUNTRY = r"^[A-Z]{2}$"
MCC = r"^[0-9]{4}$"
LAST4 = r"^[0-9]{4}$"


class Status(StrEnum):
    """Whether the card system approved or declined the authorisation."""

    APPROVED = "approved"
    DECLINED = "declined"


class Transaction(BaseModel):
    """One card transaction (an authorisation) of one customer's card."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    transaction_id: str = Field(min_length=1, max_length=64)
    customer_id: str = Field(min_length=1, max_length=64)
    card_last4: str = Field(pattern=LAST4)
    amount: Decimal = Field(ge=-AMOUNT_LIMIT, le=AMOUNT_LIMIT)
    currency: str = Field(pattern=CURRENCY)
    # The card's billing currency when it is not the FI's (a foreign-currency account).
    home_currency: str | None = Field(default=None, pattern=CURRENCY)
    merchant: str = Field(min_length=1, max_length=200)
    mcc: str = Field(pattern=MCC)
    country: str = Field(pattern=COUNTRY)
    card_present: bool
    status: Status
    occurred_at: AwareDatetime

    @field_validator("amount")
    @classmethod
    def _places(cls, value: Decimal) -> Decimal:
        if not value.is_finite():
            raise ValueError("amount must be a finite number")
        exponent = value.as_tuple().exponent
        if isinstance(exponent, int) and exponent < -AMOUNT_PLACES:
            raise ValueError(f"amount has more than {AMOUNT_PLACES} decimal places")
        return value

    @property
    def amount_units(self) -> int:
        """The amount in 1/10,000 of a currency unit (exact)."""
        return int(self.amount * AMOUNT_SCALE)

    @property
    def instant(self) -> datetime:
        """occurred_at in UTC: offsets differ between senders, instants do not."""
        return self.occurred_at.astimezone(UTC)

    @property
    def card_key(self) -> str:
        """The window key of the card (last four digits are unique only per customer)."""
        return f"card:{self.customer_id}/{self.card_last4}"

    @property
    def customer_key(self) -> str:
        """The window key of the customer."""
        return f"customer:{self.customer_id}"


class FeedSettings(BaseModel):
    """The rule set's settings that derived fields depend on."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    home_country: str = Field(pattern=COUNTRY)
    home_currency: str = Field(pattern=CURRENCY)


FieldType = Literal["number", "string", "bool", "time"]

# Every field a condition may name, with its type. Derived fields come last.
FIELDS: dict[str, FieldType] = {
    "amount": "number",
    "currency": "string",
    "merchant": "string",
    "mcc": "string",
    "country": "string",
    "card_present": "bool",
    "status": "string",
    "card_last4": "string",
    "customer_id": "string",
    "occurred_at": "time",
    "international": "bool",
    "foreign_currency": "bool",
}

# Names that stand for the rule set's settings (strings), usable wherever a literal is.
SETTINGS: dict[str, str] = {"home_country": "home_country", "home_currency": "home_currency"}

# String fields whose values have a fixed shape: a literal of another shape can never match,
# so it is refused as a typo rather than silently never firing.
FIELD_PATTERNS: dict[str, tuple[str, str]] = {
    "currency": (CURRENCY, 'an ISO 4217 code in capitals, e.g. "EUR"'),
    "mcc": (MCC, 'four digits, e.g. "5967"'),
    "country": (COUNTRY, 'an ISO 3166 alpha-2 code in capitals, e.g. "US"'),
    "card_last4": (LAST4, "four digits"),
    "status": ("^(approved|declined)$", '"approved" or "declined"'),
}


def field_value(
    txn: Transaction, name: str, settings: FeedSettings
) -> Decimal | str | bool | datetime:
    """The value of a schema field (derived ones included) for one transaction."""
    if name == "amount":
        return txn.amount
    if name == "occurred_at":
        return txn.instant
    if name == "status":
        return txn.status.value
    if name == "international":
        return txn.country != settings.home_country
    if name == "foreign_currency":
        return txn.currency != (txn.home_currency or settings.home_currency)
    value: str | bool = getattr(txn, name)
    return value

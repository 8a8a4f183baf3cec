"""Deterministic fake customers: the same seed always yields the same back office."""

from __future__ import annotations

import random
from typing import Literal

from pydantic import BaseModel

AccountType = Literal["checking", "savings", "credit_card"]
CardStatus = Literal["active", "blocked"]
ChannelName = Literal["sms", "push"]

FIRST_NAMES = (
    "Ada", "Bruno", "Chloe", "Diego", "Elena", "Farid", "Grace", "Hugo", "Ines", "Jonas",
    "Keiko", "Liam", "Maya", "Nadia", "Omar", "Priya", "Quentin", "Rosa", "Samir", "Tara",
)  # fmt: skip
LAST_NAMES = (
    "Alvarez", "Bernard", "Chen", "Dubois", "Evans", "Fischer", "Garcia", "Haddad", "Ito",
    "Jensen", "Kowalski", "Lopez", "Martin", "Nguyen", "Okafor", "Petit", "Rossi", "Silva",
)  # fmt: skip
TIMEZONES = (
    "America/New_York", "America/Chicago", "America/Denver", "America/Los_Angeles",
    "America/Mexico_City", "America/Toronto", "Europe/Paris", "Europe/Madrid", "Asia/Tokyo",
    "Australia/Sydney", "Pacific/Honolulu",
)  # fmt: skip
CURRENCY_BY_LANGUAGE = {"en": "USD", "es": "USD", "fr": "CAD"}
# Customers' phones are in the NANP's fictional range 555-0100..0199, which exists in every
# area code and is never assigned: valid numbers that reach no one. One area code holds 100
# customers; these (long-standing US codes) hold the 9999 a benchmark may seed.
AREA_CODES = (
    202, 201, 203, 205, 206, 207, 208, 209, 210, 212, 213, 214, 215, 216, 217, 218, 219, 220,
    223, 224, 225, 227, 228, 229, 231, 234, 235, 239, 240, 248, 251, 252, 253, 254, 256, 260,
    262, 267, 269, 270, 272, 274, 276, 279, 281, 283, 301, 302, 303, 304, 305, 307, 308, 309,
    310, 312, 313, 314, 315, 316, 317, 318, 319, 320, 321, 323, 324, 325, 326, 327, 329, 330,
    331, 332, 334, 336, 337, 339, 341, 346, 347, 350, 351, 352, 353, 360, 361, 363, 364, 369,
    380, 385, 386, 401, 402, 404, 405, 406, 407, 408,
)  # fmt: skip
# This customer's CRM record writes the number the way people do, so the whole path from a
# CRM record to an inbound "+12025550107" is exercised against one conversation and opt-out.
FORMATTED_PHONE_CUSTOMER = 7


class Account(BaseModel):
    """A deposit or credit account."""

    account_id: str
    type: AccountType
    currency: str


class Card(BaseModel):
    """A payment card; its status is the only state the card system changes."""

    card_id: str
    last4: str
    account_id: str
    status: CardStatus = "active"


class Customer(BaseModel):
    """A CRM customer profile."""

    customer_id: str
    name: str
    phone: str
    push_device_id: str | None
    preferred_channel: ChannelName
    timezone: str
    language: str
    accounts: list[Account]
    cards: list[Card]


def customer_id(number: int) -> str:
    """The customer ID for a 1-based customer number."""
    return f"cust-{number:04d}"


def phone(number: int) -> str:
    """The fictional E.164 phone of a customer number: customer 1 is +12025550101."""
    area, line = AREA_CODES[number // 100], 100 + number % 100
    return f"+1{area}555{line:04d}"


def crm_phone(number: int) -> str:
    """The phone as the CRM record writes it: E.164, except for one customer's "+1 202-555-0107"."""
    e164 = phone(number)
    if number != FORMATTED_PHONE_CUSTOMER:
        return e164
    return f"+1 {e164[2:5]}-{e164[5:8]}-{e164[8:]}"


def _accounts_and_cards(
    rng: random.Random, number: int, currency: str, last4s: list[str]
) -> tuple[list[Account], list[Card]]:
    types: list[AccountType] = ["checking"]
    if len(last4s) > 1 or rng.random() < 0.5:
        types.append("credit_card")
    if rng.random() < 0.5:
        types.append("savings")
    accounts = [
        Account(account_id=f"acc-{number:04d}-{i + 1:02d}", type=t, currency=currency)
        for i, t in enumerate(types)
    ]
    card_accounts = [a for a in accounts if a.type != "savings"][: len(last4s)]
    cards = [
        Card(card_id=f"card-{number:04d}-{i + 1:02d}", last4=last4, account_id=a.account_id)
        for i, (last4, a) in enumerate(zip(last4s, card_accounts, strict=True))
    ]
    return accounts, cards


def _random_last4s(rng: random.Random) -> list[str]:
    count = 1 if rng.random() < 0.6 else 2
    return [f"{n:04d}" for n in rng.sample(range(10000), count)]


def _language(number: int) -> str:
    # Fixed by position, not drawn, so every seed has a few Spanish and French speakers.
    return {5: "es", 6: "fr"}.get(number % 8, "en")


# Canaries: customers whose every personal value is unmistakable, so a test can run every
# flow for them and then search logs, histories and databases for any of those values.
# Their IDs are not numbered (the numbered range is the benchmark's), their phones are in
# an area code the numbered customers never use, and nothing else in the sandbox looks
# like their names, card digits or account numbers.
CANARY_CUSTOMERS = (
    Customer(
        customer_id="cust-canary-01",
        name="Quillon Zephyrine Canarywhistle",
        phone="+15055550187",
        push_device_id=None,
        preferred_channel="sms",
        timezone="America/Denver",
        language="en",
        accounts=[
            Account(account_id="acc-8274619305", type="checking", currency="USD"),
            Account(account_id="acc-8274619313", type="credit_card", currency="USD"),
        ],
        cards=[Card(card_id="card-8274619321", last4="9173", account_id="acc-8274619305")],
    ),
    Customer(
        customer_id="cust-canary-02",
        name="Ysoldra Brackenwhirl Canarytrill",
        phone="+15055550142",
        push_device_id=None,
        preferred_channel="sms",
        timezone="America/Denver",
        language="en",
        accounts=[Account(account_id="acc-6391847052", type="checking", currency="USD")],
        cards=[Card(card_id="card-6391847060", last4="6482", account_id="acc-6391847052")],
    ),
)


def build_customers(seed: int = 7, count: int = 24) -> list[Customer]:
    """Seeded customers then the canaries; the first four are fixed (tests and docs use them)."""
    rng = random.Random(seed)
    customers: list[Customer] = []
    for number in range(1, count + 1):
        language = _language(number)
        device: str | None
        # Fixed rows: 1 sms without device, 2 push with device, 3 push without device
        # (fallback to SMS), 4 device but sms preferred.
        if number == 1:
            device, channel, last4s = None, "sms", ["4242"]
        elif number == 2:
            device, channel, last4s = "dev-0002", "push", ["1881"]
        elif number == 3:
            device, channel, last4s = None, "push", _random_last4s(rng)
        elif number == 4:
            device, channel, last4s = "dev-0004", "sms", _random_last4s(rng)
        else:
            has_device = rng.random() < 1 / 3
            device = f"dev-{number:04d}" if has_device else None
            channel = "push" if has_device and rng.random() < 0.75 else "sms"
            last4s = _random_last4s(rng)
        accounts, cards = _accounts_and_cards(rng, number, CURRENCY_BY_LANGUAGE[language], last4s)
        customers.append(
            Customer(
                customer_id=customer_id(number),
                name=f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}",
                phone=crm_phone(number),
                push_device_id=device,
                preferred_channel="push" if channel == "push" else "sms",
                timezone=TIMEZONES[(number - 1) % len(TIMEZONES)],
                language=language,
                accounts=accounts,
                cards=cards,
            )
        )
    customers.extend(c.model_copy(deep=True) for c in CANARY_CUSTOMERS)
    return customers

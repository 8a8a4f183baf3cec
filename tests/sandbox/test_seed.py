"""The seeded customers meet the constraints other parts of fiflow rely on."""

from __future__ import annotations

import re
from zoneinfo import ZoneInfo

import httpx

from fiflow.domain.phones import normalise_phone, phone_region
from fiflow.sandbox.seed import (
    CANARY_CUSTOMERS,
    FORMATTED_PHONE_CUSTOMER,
    build_customers,
    customer_id,
)

# NANP's fictional range: 555-0100..0199 in any area code.
FICTIONAL = re.compile(r"^\+1[2-9][0-9]{2}55501[0-9]{2}$")


async def test_seeded_customers_meet_constraints(sandbox: httpx.AsyncClient) -> None:
    customers = (await sandbox.get("/__sandbox/customers")).json()
    assert len(customers) >= 24
    ids = [c["customer_id"] for c in customers]
    canaries = [c.customer_id for c in CANARY_CUSTOMERS]
    assert ids[-len(canaries) :] == canaries
    assert all(re.fullmatch(r"cust-[0-9]{4}", i) for i in ids[: -len(canaries)])
    assert len(set(ids)) == len(ids)
    phones = [normalise_phone(c["phone"]) for c in customers]
    assert all(FICTIONAL.match(p) for p in phones) and len(set(phones)) == len(phones)
    formatted = [c for c in customers if c["phone"] != normalise_phone(c["phone"])]
    assert [c["customer_id"] for c in formatted] == [customer_id(FORMATTED_PHONE_CUSTOMER)]

    with_device = [c for c in customers if c["push_device_id"]]
    assert len(customers) / 5 <= len(with_device) <= len(customers) / 2
    assert all(c["push_device_id"].startswith("dev-") for c in with_device)
    prefs = [c["preferred_channel"] for c in customers]
    assert set(prefs) == {"sms", "push"} and prefs.count("sms") > len(prefs) / 2
    assert any(c["preferred_channel"] == "push" and not c["push_device_id"] for c in customers)
    assert any(c["preferred_channel"] == "sms" and c["push_device_id"] for c in customers)

    languages = {c["language"] for c in customers}
    assert {"en", "es", "fr"} <= languages
    assert len({c["timezone"] for c in customers}) >= 5
    for c in customers:
        ZoneInfo(c["timezone"])
        account_ids = {a["account_id"] for a in c["accounts"]}
        assert c["accounts"] and all(
            a["type"] in {"checking", "savings", "credit_card"} and len(a["currency"]) == 3
            for a in c["accounts"]
        )
        last4s = [card["last4"] for card in c["cards"]]
        assert c["cards"] and len(set(last4s)) == len(last4s)
        for card in c["cards"]:
            assert re.fullmatch(r"[0-9]{4}", card["last4"])
            assert card["status"] == "active" and card["account_id"] in account_ids


async def test_fixed_customers(sandbox: httpx.AsyncClient) -> None:
    first = (await sandbox.get("/crm/customers/cust-0001")).json()
    assert first["phone"] == "+12025550101"
    assert first["preferred_channel"] == "sms" and first["push_device_id"] is None
    assert [card["last4"] for card in first["cards"]] == ["4242"]

    second = (await sandbox.get("/crm/customers/cust-0002")).json()
    assert second["phone"] == "+12025550102"
    assert second["preferred_channel"] == "push" and second["push_device_id"] == "dev-0002"
    assert "1881" in [card["last4"] for card in second["cards"]]


def test_seed_is_deterministic() -> None:
    assert build_customers(7) == build_customers(7)
    assert build_customers(7) != build_customers(8)
    assert len(build_customers(7, count=100)) == 100 + len(CANARY_CUSTOMERS)
    # The fixed customers do not depend on the seed.
    for seed in (1, 2, 3):
        first = build_customers(seed)[0]
        assert first.phone == "+12025550101" and first.cards[0].last4 == "4242"


def test_every_seedable_customer_has_a_valid_fictional_us_number() -> None:
    customers = build_customers(7, count=9999)
    phones = [normalise_phone(c.phone) for c in customers]
    assert len(set(phones)) == len(phones)
    assert all(FICTIONAL.match(p) for p in phones)
    assert {phone_region(p) for p in phones} == {"US"}
    assert customers[FORMATTED_PHONE_CUSTOMER - 1].phone == "+1 202-555-0107"


async def test_crm_finds_a_formatted_number_by_its_e164_form(sandbox: httpx.AsyncClient) -> None:
    for asked in ("+12025550107", "+1 202 555 0107", "+1 (202) 555-0107"):
        found = (await sandbox.get("/crm/customers", params={"phone": asked})).json()
        assert [c["customer_id"] for c in found] == ["cust-0007"], asked
    assert (await sandbox.get("/crm/customers", params={"phone": "+12025550170"})).json() == []


def test_canaries_share_no_value_with_any_seedable_customer() -> None:
    customers = build_customers(7, count=9999)
    canaries = customers[-len(CANARY_CUSTOMERS) :]
    taken = {v for c in customers[: -len(CANARY_CUSTOMERS)] for v in (c.phone, *c.name.split())}
    # Four digits cannot stay unique among 9999 customers' cards: unique among the 64 the
    # end-to-end stack seeds.
    e2e = build_customers(7, count=64)[: -len(CANARY_CUSTOMERS)]
    taken |= {card.last4 for c in e2e for card in c.cards}
    for canary in canaries:
        mine = {canary.phone, *canary.name.split(), *(card.last4 for card in canary.cards)}
        assert not mine & taken, canary.customer_id

"""The seeded customers meet the constraints other parts of fiflow rely on."""

from __future__ import annotations

import re
from zoneinfo import ZoneInfo

import httpx

from fiflow.sandbox.seed import build_customers

E164 = re.compile(r"^\+1555[0-9]{7}$")


async def test_seeded_customers_meet_constraints(sandbox: httpx.AsyncClient) -> None:
    customers = (await sandbox.get("/__sandbox/customers")).json()
    assert len(customers) >= 24
    ids = [c["customer_id"] for c in customers]
    assert all(re.fullmatch(r"cust-[0-9]{4}", i) for i in ids)
    assert len(set(ids)) == len(ids)
    phones = [c["phone"] for c in customers]
    assert all(E164.match(p) for p in phones) and len(set(phones)) == len(phones)

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
    assert first["phone"] == "+15550000001"
    assert first["preferred_channel"] == "sms" and first["push_device_id"] is None
    assert [card["last4"] for card in first["cards"]] == ["4242"]

    second = (await sandbox.get("/crm/customers/cust-0002")).json()
    assert second["phone"] == "+15550000002"
    assert second["preferred_channel"] == "push" and second["push_device_id"] == "dev-0002"
    assert "1881" in [card["last4"] for card in second["cards"]]


def test_seed_is_deterministic() -> None:
    assert build_customers(7) == build_customers(7)
    assert build_customers(7) != build_customers(8)
    assert len(build_customers(7, count=100)) == 100
    # The fixed customers do not depend on the seed.
    for seed in (1, 2, 3):
        first = build_customers(seed)[0]
        assert first.phone == "+15550000001" and first.cards[0].last4 == "4242"

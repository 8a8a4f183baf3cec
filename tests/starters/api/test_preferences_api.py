"""The alert preferences API through the real app, its auth and a real SQLite database.

Only the CRM is a stand-in (a customer and their cards); the rules are the shipped ones.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
import yaml
from temporalio.client import Client

from fiflow.domain.customers import Card, Customer
from fiflow.integrations.http import BusinessError, TransientError
from fiflow.integrations.settings import Settings
from fiflow.starters.api.app import create_app
from fiflow.starters.api.sessions import mint_customer_session
from tests.fixtures.migrated_db import migrated_sqlite

OWNER, STRANGER, GHOST = "cust-A", "cust-B", "cust-ghost"
SESSION_KEY = Settings().customer_session_key.get_secret_value()
CONDITIONS = Path(__file__).resolve().parents[3] / "fiflow" / "rules" / "conditions.yaml"


def url(customer_id: str = OWNER) -> str:
    return f"/v1/customers/{customer_id}/alert-preferences"


def channel(customer_id: str = OWNER) -> dict[str, str]:
    return {
        "X-API-Key": "local-channel-key",
        "X-Customer-Session": mint_customer_session(SESSION_KEY, customer_id),
    }


def with_version(version: object, customer_id: str = OWNER) -> dict[str, str]:
    return {**channel(customer_id), "If-Match": str(version)}


class FakeCrm:
    """The CRM's customers: OWNER holds cards 4242 and 1881; GHOST is unknown."""

    def __init__(self) -> None:
        self.down = False

    async def get_customer(self, customer_id: str) -> Customer:
        if self.down:
            raise TransientError("crm", "timeout")
        if customer_id == GHOST:
            raise BusinessError("crm", "not found", status=404, code="customer_not_found")
        cards = [Card(card_id="c1", last4="4242"), Card(card_id="c2", last4="1881")]
        return Customer(customer_id=customer_id, cards=cards if customer_id == OWNER else [])


@pytest.fixture
def crm() -> FakeCrm:
    return FakeCrm()


@pytest.fixture
async def api(tmp_path: Path, crm: FakeCrm) -> AsyncIterator[httpx.AsyncClient]:
    db_url = f"sqlite:///{tmp_path / 'fiflow.db'}"
    migrated_sqlite(db_url)
    app = create_app(Settings(database_url=db_url), client=cast(Client, object()))
    app.state.fiflow.crm = crm
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
        yield client


MINE: dict[str, Any] = {
    "preferences": [
        {"kind": "amount_over", "amount": "250.50", "channel": "push"},
        {"kind": "card_activity", "cards": ["4242"], "channel": "sms", "quiet_hours_ok": True},
        {"kind": "merchant_category", "mccs": ["7995", "4829"]},
        {"kind": "balance_below", "amount": "20", "currency": "USD"},
    ]
}


async def test_a_customer_with_nothing_stored_reads_the_fi_defaults(
    api: httpx.AsyncClient,
) -> None:
    r = await api.get(url(), headers=channel())

    assert r.status_code == 200, r.text
    assert r.headers["ETag"] == '"0"'
    body = r.json()
    assert (body["customer_id"], body["version"], body["defaults"]) == (OWNER, 0, True)
    assert body["updated_at"] is None
    shipped = yaml.safe_load(CONDITIONS.read_text())["default_preferences"]
    assert [p["kind"] for p in body["preferences"]] == [p["kind"] for p in shipped]
    amount_over = next(p for p in body["preferences"] if p["kind"] == "amount_over")
    assert amount_over["amount"] == "500"


async def test_create_read_update_with_versions(api: httpx.AsyncClient) -> None:
    created = await api.put(url(), json=MINE, headers=channel())
    assert created.status_code == 200, created.text
    assert created.headers["ETag"] == '"1"'
    assert (created.json()["version"], created.json()["defaults"]) == (1, False)

    read = await api.get(url(), headers=channel())
    assert read.status_code == 200
    assert read.headers["ETag"] == '"1"'
    body = read.json()
    assert body["updated_at"] is not None
    assert body["preferences"] == [
        {"kind": "amount_over", "amount": "250.5", "channel": "push", "quiet_hours_ok": False},
        {"kind": "card_activity", "cards": ["4242"], "channel": "sms", "quiet_hours_ok": True},
        {"kind": "merchant_category", "mccs": ["7995", "4829"], "channel": "preferred",
         "quiet_hours_ok": False},
        {"kind": "balance_below", "amount": "20", "currency": "USD", "channel": "preferred",
         "quiet_hours_ok": False},
    ]  # fmt: skip

    changed = await api.put(
        url(), json={"preferences": [{"kind": "declined"}]}, headers=with_version('"1"')
    )
    assert changed.status_code == 200, changed.text
    assert changed.headers["ETag"] == '"2"'
    again = (await api.get(url(), headers=channel())).json()
    assert (again["version"], [p["kind"] for p in again["preferences"]]) == (2, ["declined"])

    # An empty list turns every preference alert off; it is not "back to the defaults".
    off = await api.put(url(), json={"preferences": []}, headers=with_version('W/"2"'))
    assert off.status_code == 200
    final = (await api.get(url(), headers=channel())).json()
    assert (final["version"], final["defaults"], final["preferences"]) == (3, False, [])


async def test_a_stale_or_missing_version_changes_nothing(api: httpx.AsyncClient) -> None:
    assert (await api.put(url(), json=MINE, headers=channel())).status_code == 200
    first_etag = (await api.get(url(), headers=channel())).headers["ETag"]
    assert (
        await api.put(url(), json={"preferences": []}, headers=with_version(first_etag))
    ).status_code == 200

    stale = await api.put(url(), json=MINE, headers=with_version(first_etag))
    assert (stale.status_code, stale.json()["code"]) == (412, "version_conflict")
    missing = await api.put(url(), json=MINE, headers=channel())
    assert (missing.status_code, missing.json()["code"]) == (428, "precondition_required")
    # Latin-1 "²" is a digit to str.isdigit, but no version we issue.
    for junk in ('"banana"', "*", '"99"', '"0"', '"\u00b2"', '"12345678901234567890"'):
        headers: dict[str, str | bytes] = {**channel(), "If-Match": junk.encode("latin-1")}
        r = await api.put(url(), json=MINE, headers=headers)
        assert (r.status_code, r.json()["code"]) == (412, "version_conflict"), junk

    body = (await api.get(url(), headers=channel())).json()
    assert (body["version"], body["preferences"]) == (2, [])


async def test_two_writers_over_one_version_one_wins(api: httpx.AsyncClient) -> None:
    assert (await api.put(url(), json=MINE, headers=channel())).status_code == 200
    bodies = [{"preferences": [{"kind": k}]} for k in ("declined", "international")]
    results = await asyncio.gather(
        *(api.put(url(), json=b, headers=with_version('"1"')) for b in bodies)
    )
    assert sorted(r.status_code for r in results) == [200, 412]
    winner = next(b for b, r in zip(bodies, results, strict=True) if r.status_code == 200)
    stored = (await api.get(url(), headers=channel())).json()
    assert stored["version"] == 2
    assert [p["kind"] for p in stored["preferences"]] == [winner["preferences"][0]["kind"]]


@pytest.mark.parametrize(
    ("entry", "code"),
    [
        ({"kind": "weather"}, "unknown_preference_kind"),
        ({"amount": "10"}, "unknown_preference_kind"),
        ({"kind": "amount_over", "amount": "-0.01"}, "invalid_amount"),
        ({"kind": "amount_over", "amount": "1.00001"}, "invalid_amount"),
        ({"kind": "balance_below", "amount": "-5"}, "invalid_amount"),
        ({"kind": "merchant_category", "mccs": ["799"]}, "invalid_mcc"),
        ({"kind": "merchant_category", "mccs": ["7995", "ab12"]}, "invalid_mcc"),
        ({"kind": "merchant_category", "mccs": []}, "invalid_mcc"),
        ({"kind": "card_activity", "cards": ["42"]}, "invalid_card"),
        ({"kind": "card_activity", "cards": ["9999"]}, "unknown_card"),
        ({"kind": "declined", "channel": "fax"}, "invalid_request"),
        ({"kind": "declined", "quiet": True}, "invalid_request"),
    ],
)
async def test_bad_input_is_refused_with_a_code(
    api: httpx.AsyncClient, entry: dict[str, Any], code: str
) -> None:
    r = await api.put(url(), json={"preferences": [entry]}, headers=channel())

    assert r.status_code == 422, r.text
    body = r.json()
    assert (body["code"], bool(body["message"])) == (code, True)
    if code != "unknown_card":
        assert body["details"] and all(
            d["field"].startswith("preferences") for d in body["details"]
        )
    assert (await api.get(url(), headers=channel())).json()["defaults"] is True


async def test_a_kind_twice_is_refused(api: httpx.AsyncClient) -> None:
    body = {"preferences": [{"kind": "declined"}, {"kind": "declined", "channel": "sms"}]}
    r = await api.put(url(), json=body, headers=channel())
    assert (r.status_code, r.json()["code"]) == (422, "duplicate_preference_kind")
    assert "declined" in r.json()["details"][0]["problem"]


async def test_malformed_json_is_a_400(api: httpx.AsyncClient) -> None:
    r = await api.put(
        url(),
        content=b'{"preferences": [',
        headers={**channel(), "Content-Type": "application/json"},
    )
    assert (r.status_code, r.json()["code"]) == (400, "malformed_json")


async def test_an_unknown_customer_is_not_found(api: httpx.AsyncClient) -> None:
    got = await api.get(url(GHOST), headers=channel(GHOST))
    assert (got.status_code, got.json()["code"]) == (404, "customer_not_found")
    put = await api.put(url(GHOST), json=MINE, headers=channel(GHOST))
    assert (put.status_code, put.json()["code"]) == (404, "customer_not_found")


async def test_crm_trouble(api: httpx.AsyncClient, crm: FakeCrm) -> None:
    crm.down = True
    # Reading the defaults needs nothing of the customer's: still answered.
    got = await api.get(url(), headers=channel())
    assert (got.status_code, got.json()["defaults"]) == (200, True)
    # A write names cards the CRM must vouch for: refused until it answers.
    put = await api.put(url(), json=MINE, headers=channel())
    assert (put.status_code, put.json()["code"]) == (503, "crm_unavailable")
    crm.down = False
    assert (await api.put(url(), json=MINE, headers=channel())).status_code == 200


@pytest.mark.parametrize("method", ["GET", "PUT"])
async def test_only_the_customers_own_channel_session(api: httpx.AsyncClient, method: str) -> None:
    callers: list[tuple[dict[str, str], int, str]] = [
        ({}, 401, "unauthorized"),
        ({"X-API-Key": "local-system-key"}, 403, "forbidden"),
        ({"X-API-Key": "local-reviewer-1-key"}, 403, "forbidden"),
        ({"X-API-Key": "local-admin-key"}, 403, "forbidden"),
        ({"X-API-Key": "local-channel-key"}, 403, "customer_session_required"),
        (channel(STRANGER), 404, "customer_not_found"),
        (
            {"X-API-Key": "local-channel-key", "X-Customer-Session": "forged"},
            403,
            "invalid_customer_session",
        ),
    ]
    for headers, status, code in callers:
        r = await api.request(method, url(), json=MINE, headers=headers)
        assert (r.status_code, r.json()["code"]) == (status, code), headers
    # Nothing was written by any of them.
    assert (await api.get(url(), headers=channel())).json()["version"] == 0

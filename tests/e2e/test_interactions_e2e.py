"""Interactions, triggers and follow-ups end to end on `fiflow up`, and the rules admin API."""

from __future__ import annotations

import copy
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.e2e.conftest import CustomerPool
from tests.e2e.quick_rules import quick_triggers
from tests.e2e.stack import CHANNEL_KEY, REVIEWER_KEY, SYSTEM_KEY, RunningStack
from tests.e2e.test_alerts_e2e import outbox
from tests.e2e.test_api_bad_input import assert_error
from tests.e2e.waiting import eventually

# Activating rules needs an admin person (triggers need no second admin).
ADMIN_KEY = {"X-API-Key": "local-admin-1-key"}
SHIPPED_TRIGGERS = Path(__file__).resolve().parents[2] / "fiflow" / "rules" / "triggers.yaml"


def quick_rules(version: str) -> dict[str, Any]:
    """The shipped triggers with seconds instead of days, and no hours limits."""
    data: dict[str, Any] = yaml.safe_load(SHIPPED_TRIGGERS.read_text(encoding="utf-8"))
    data["version"] = version
    quick_triggers(data, give_up_after="PT15S")
    return data


@pytest.fixture(scope="module")
def quick_version(stack: RunningStack) -> str:
    """Activate the quick rules once for this module (through the admin API)."""
    version = f"e2e-{uuid.uuid4().hex[:8]}"
    r = httpx.put(
        f"{stack.api}/v1/admin/rules/triggers",
        json=quick_rules(version),
        headers=ADMIN_KEY,
        timeout=10,
    )
    assert r.status_code == 200, r.text
    assert r.json()["active_version"] == version
    return version


def event(event_id: str, type_: str, customer: dict[str, Any] | None = None, **attrs: Any) -> dict:
    body: dict[str, Any] = {
        "event_id": event_id,
        "channel": "ivr",
        "type": type_,
        "attributes": attrs,
        "occurred_at": datetime.now(UTC).isoformat(),
    }
    if customer is not None:
        body["caller"] = customer["phone"]
    return body


async def post(http: httpx.AsyncClient, stack: RunningStack, iid: str, body: dict) -> dict:
    r = await http.post(f"{stack.api}/v1/interactions/{iid}/events", json=body, headers=CHANNEL_KEY)
    assert r.status_code == 202, r.text
    return dict(r.json())


async def view(http: httpx.AsyncClient, stack: RunningStack, iid: str) -> dict[str, Any]:
    r = await http.get(f"{stack.api}/v1/interactions/{iid}", headers=REVIEWER_KEY)
    assert r.status_code == 200, r.text
    return dict(r.json())


async def closed(http: httpx.AsyncClient, stack: RunningStack, iid: str) -> dict[str, Any]:
    done: dict[str, Any] = await eventually(
        lambda: view(http, stack, iid), lambda v: v["run_status"] == "completed", 30
    )
    return done


async def test_an_ivr_session_fires_a_follow_up_that_reaches_the_customer(
    stack: RunningStack, http: httpx.AsyncClient, pool: CustomerPool, quick_version: str
) -> None:
    customer = pool.take()
    cid = customer["customer_id"]
    # Yesterday's call about the same problem (known by phone number only, as IVRs do).
    first = f"ivr-{uuid.uuid4().hex[:10]}"
    await post(
        http, stack, first, event(f"{first}-1", "menu_selected", customer, topic="tech_support")
    )
    await post(http, stack, first, event(f"{first}-2", "interaction_ended", customer))
    earlier = await closed(http, stack, first)
    assert earlier["status"]["reason"] == "tech_support"
    assert earlier["status"]["customer_id"] == cid  # resolved through CRM

    # Today: self-service fails again; the caller is a repeat caller.
    second = f"ivr-{uuid.uuid4().hex[:10]}"
    await post(
        http, stack, second, event(f"{second}-1", "menu_selected", customer, topic="tech_support")
    )
    await post(
        http,
        stack,
        second,
        event(f"{second}-2", "self_service_failed", customer, topic="tech_support"),
    )
    live = await eventually(
        lambda: view(http, stack, second),
        lambda v: v["status"] and v["status"]["next_actions"],
    )
    status = live["status"]
    assert status["rule_set_version"] == quick_version
    assert [a["action"] for a in status["next_actions"]] == ["priority_routing"]
    assert status["repeat_of"] == [first]
    # No phone number anywhere in what the workflow holds.
    assert customer["phone"] not in str(status)

    # Time moves on: the follow-up comes due, finds the ticket open and reaches out.
    texts = await eventually(
        lambda: outbox(http, stack, customer["phone"]), lambda m: len(m) >= 1, 30
    )
    assert "Technical problem still open after self-service failed" in texts[0]["body"]
    notes = await eventually(
        lambda: _notes(http, stack, cid), lambda n: any("Follow-up contact 1" in x for x in n), 30
    )
    assert any("Follow-up contact 1 by sms" in n for n in notes)
    tickets = (
        await http.get(f"{stack.sandbox}/__sandbox/crm/tickets", params={"customer_id": cid})
    ).json()
    assert [t["status"] for t in tickets] == ["open"]
    follow_up_id = f"{second}-repeat_tech_support_failure"
    r = await http.get(f"{stack.api}/v1/follow-ups/{follow_up_id}", headers=REVIEWER_KEY)
    assert r.status_code == 200, r.text
    assert r.json()["status"]["attempts"][0]["channel"] == "sms"


async def test_bad_late_duplicate_and_out_of_order_events(
    stack: RunningStack, http: httpx.AsyncClient, pool: CustomerPool, quick_version: str
) -> None:
    customer = pool.take()
    iid = f"chat-{uuid.uuid4().hex[:10]}"
    url = f"{stack.api}/v1/interactions/{iid}/events"
    good = {**event("b1", "interaction_started"), "customer_id": customer["customer_id"]}

    assert_error(
        await http.post(url, json={**good, "type": "coffee"}, headers=CHANNEL_KEY),
        422,
        "unknown_event_type",
    )
    missing = {k: v for k, v in good.items() if k != "event_id"}
    assert_error(await http.post(url, json=missing, headers=CHANNEL_KEY), 422, "invalid_request")
    no_one = {k: v for k, v in good.items() if k != "customer_id"}
    assert_error(await http.post(url, json=no_one, headers=CHANNEL_KEY), 422, "invalid_request")
    future = {**good, "occurred_at": (datetime.now(UTC) + timedelta(hours=1)).isoformat()}
    assert_error(
        await http.post(url, json=future, headers=CHANNEL_KEY), 422, "occurred_at_in_future"
    )
    assert_error(await http.post(url, json=good), 401, "unauthorized")
    assert_error(await http.post(url, json=good, headers=SYSTEM_KEY), 403, "forbidden")
    unknown = {**good, "customer_id": "cust-9999"}
    assert_error(await http.post(url, json=unknown, headers=CHANNEL_KEY), 422, "unknown_customer")
    r = await http.get(f"{stack.api}/v1/interactions/{iid}", headers=REVIEWER_KEY)
    assert_error(r, 404, "interaction_not_found")  # nothing above started anything

    assert (await post(http, stack, iid, good))["status"] == "accepted"
    assert (await post(http, stack, iid, good))["status"] == "duplicate"
    earlier = {
        **good,
        "event_id": "b2",
        "type": "menu_selected",
        "occurred_at": (datetime.now(UTC) - timedelta(minutes=5)).isoformat(),
    }
    assert (await post(http, stack, iid, earlier))["status"] == "accepted"
    await post(http, stack, iid, {**good, "event_id": "b3", "type": "interaction_ended"})
    done = await closed(http, stack, iid)
    assert [(e["event_id"], e["out_of_order"]) for e in done["status"]["events"]] == [
        ("b1", False),
        ("b2", True),
        ("b3", False),
    ]

    late = await post(http, stack, iid, {**good, "event_id": "b4", "type": "agent_note"})
    assert late["status"] == "late"
    after = await view(http, stack, iid)
    assert [e["event_id"] for e in after["late_events"]] == ["b4"]
    assert len(after["status"]["events"]) == 3  # the closed interaction was not reopened


async def test_rules_admin_lists_validates_and_activates(
    stack: RunningStack, http: httpx.AsyncClient, quick_version: str
) -> None:
    url = f"{stack.api}/v1/admin/rules"
    assert_error(await http.get(url, headers=REVIEWER_KEY), 403, "forbidden")
    r = await http.get(url, headers=ADMIN_KEY)
    assert r.status_code == 200, r.text
    sets = {s["name"]: s for s in r.json()}
    assert set(sets) == {"alerts", "credit", "triggers", "conditions"}
    assert sets["triggers"]["active_version"] == quick_version
    assert [v["source"] for v in sets["credit"]["versions"]] == ["file"]

    broken = copy.deepcopy(quick_rules("e2e-broken"))
    broken["follow_up"]["max_attempts"] = 0
    body = assert_error(
        await http.put(f"{url}/triggers", json=broken, headers=ADMIN_KEY), 422, "invalid_rules"
    )
    assert "max_attempts" in body["message"]
    changed = quick_rules(quick_version)
    changed["grace_period"] = "PT5S"
    assert_error(
        await http.put(f"{url}/triggers", json=changed, headers=ADMIN_KEY), 409, "version_exists"
    )
    assert_error(
        await http.put(f"{url}/nonsense", json={}, headers=ADMIN_KEY), 404, "unknown_rule_set"
    )
    # The same version again is a harmless retry; the active version is unchanged.
    again = await http.put(f"{url}/triggers", json=quick_rules(quick_version), headers=ADMIN_KEY)
    assert again.status_code == 200 and again.json()["active_version"] == quick_version


async def _notes(http: httpx.AsyncClient, stack: RunningStack, customer_id: str) -> list[str]:
    r = await http.get(f"{stack.sandbox}/__sandbox/crm/notes", params={"customer_id": customer_id})
    r.raise_for_status()
    return [n["text"] for n in r.json()]


async def test_follow_ups_over_http_start_move_and_resolve(
    stack: RunningStack, http: httpx.AsyncClient, pool: CustomerPool, quick_version: str
) -> None:
    customer = pool.take()
    cid = customer["customer_id"]
    r = await http.post(
        f"{stack.sandbox}/crm/customers/{cid}/tickets",
        json={"subject": "Statement missing", "category": "billing"},
    )
    assert r.status_code == 201, r.text
    ticket_id = r.json()["ticket_id"]
    url = f"{stack.api}/v1/follow-ups"
    in_a_day = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    body = {
        "follow_up_id": f"fu-{uuid.uuid4().hex[:10]}",
        "customer_id": cid,
        "ticket_id": ticket_id,
        "reason": "billing",
        "follow_up_at": in_a_day,
    }

    assert_error(
        await http.post(url, json={**body, "ticket_id": "tkt-none"}, headers=CHANNEL_KEY),
        422,
        "unknown_ticket",
    )
    assert_error(
        await http.post(url, json={**body, "customer_id": "cust-0002"}, headers=CHANNEL_KEY),
        422,
        "ticket_customer_mismatch",
    )
    assert_error(await http.post(url, json=body, headers=REVIEWER_KEY), 403, "forbidden")
    r = await http.post(url, json=body, headers=CHANNEL_KEY)
    assert r.status_code == 202, r.text
    fid = body["follow_up_id"]
    assert (await http.post(url, json=body, headers=CHANNEL_KEY)).status_code == 202  # same one

    later = (datetime.now(UTC) + timedelta(days=2)).isoformat()
    r = await http.post(f"{url}/{fid}/reschedule", json={"follow_up_at": later}, headers=SYSTEM_KEY)
    assert r.status_code == 200, r.text
    moved = await eventually(
        lambda: _follow_up(http, stack, fid), lambda v: v["status"]["reschedules"]
    )
    assert moved["status"]["follow_up_at"].startswith(later[:16])
    past = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    assert_error(
        await http.post(f"{url}/{fid}/reschedule", json={"follow_up_at": past}, headers=SYSTEM_KEY),
        422,
        "invalid_follow_up_at",
    )

    r = await http.post(
        f"{url}/{fid}/resolved", json={"resolved_by": "agent-7"}, headers=SYSTEM_KEY
    )
    assert r.status_code == 200, r.text
    done = await eventually(
        lambda: _follow_up(http, stack, fid), lambda v: v["run_status"] == "completed"
    )
    assert done["status"]["outcome"] == "resolved" and done["status"]["attempts"] == []
    assert_error(
        await http.post(f"{url}/{fid}/resolved", json={}, headers=SYSTEM_KEY),
        409,
        "follow_up_finished",
    )
    assert_error(await http.get(f"{url}/fu-none", headers=REVIEWER_KEY), 404, "follow_up_not_found")


async def _follow_up(http: httpx.AsyncClient, stack: RunningStack, fid: str) -> dict[str, Any]:
    r = await http.get(f"{stack.api}/v1/follow-ups/{fid}", headers=REVIEWER_KEY)
    assert r.status_code == 200, r.text
    return dict(r.json())


async def test_asking_about_a_loan_in_the_app_prepares_an_application(
    stack: RunningStack, http: httpx.AsyncClient, pool: CustomerPool, quick_version: str
) -> None:
    customer = pool.take()
    cid = customer["customer_id"]
    iid = f"app-{uuid.uuid4().hex[:10]}"
    body = {**event("l1", "keyword_detected", keyword="loan"), "channel": "app", "customer_id": cid}
    await post(http, stack, iid, body)

    async def prefill() -> dict[str, Any]:
        r = await http.get(
            f"{stack.api}/v1/credit-prefills/{iid}-loan_interest", headers=REVIEWER_KEY
        )
        return {"code": r.status_code, **r.json()}

    ready = await eventually(
        prefill, lambda v: v["code"] == 200 and v["status"] and v["status"]["state"] == "ready"
    )
    draft = ready["status"]["prefill"]
    assert draft["product"] == "personal_loan" and draft["history_available"] is True
    assert 1000 <= float(draft["suggested_amount"]) <= 50000
    pulls = (
        await http.get(f"{stack.sandbox}/__sandbox/bureau/pulls", params={"customer_id": cid})
    ).json()
    assert pulls == []  # no credit pulled without the applicant's consent
    missing = await http.get(f"{stack.api}/v1/credit-prefills/none", headers=REVIEWER_KEY)
    assert_error(missing, 404, "prefill_not_found")


async def test_a_new_rules_version_applies_to_new_runs_only_and_can_be_rolled_back(
    stack: RunningStack, http: httpx.AsyncClient, pool: CustomerPool, quick_version: str
) -> None:
    customer = pool.take()
    url = f"{stack.api}/v1/admin/rules/triggers"
    before = f"ivr-{uuid.uuid4().hex[:10]}"
    await post(
        http,
        stack,
        before,
        {**event("v1", "interaction_started"), "customer_id": customer["customer_id"]},
    )
    running = await eventually(lambda: view(http, stack, before), _rules_loaded)
    assert running["status"]["rule_set_version"] == quick_version

    newer = f"e2e-new-{uuid.uuid4().hex[:6]}"
    assert_error(
        await http.put(url, json=quick_rules(newer), headers=CHANNEL_KEY), 403, "forbidden"
    )
    r = await http.put(url, json=quick_rules(newer), headers=ADMIN_KEY)
    assert r.status_code == 200 and r.json()["active_version"] == newer, r.text
    try:
        after = f"ivr-{uuid.uuid4().hex[:10]}"

        # Every process picks the activation up within a second.
        async def started_with() -> str:
            iid = f"{after}-{uuid.uuid4().hex[:4]}"
            await post(
                http,
                stack,
                iid,
                {**event("v2", "interaction_started"), "customer_id": customer["customer_id"]},
            )
            found = await eventually(lambda: view(http, stack, iid), _rules_loaded)
            return str(found["status"]["rule_set_version"])

        assert await eventually(started_with, lambda v: v == newer, 10) == newer
        still = await view(http, stack, before)
        assert still["status"]["rule_set_version"] == quick_version  # in flight: unchanged
    finally:
        # Roll back: the earlier version, activated again, is the active one once more.
        r = await http.put(url, json=quick_rules(quick_version), headers=ADMIN_KEY)
        assert r.status_code == 200 and r.json()["active_version"] == quick_version, r.text


def _rules_loaded(v: dict[str, Any]) -> bool:
    """The interaction answers its query and has loaded its rules (its first step)."""
    return bool(v["status"] and v["status"]["rule_set_version"])

"""The PII canary: run every flow for customers with unmistakable data, then find none of it.

The canaries' names, phones, card digits and account numbers, the merchant and amount of
their transactions and every SMS they were sent must not appear anywhere fiflow keeps in
clear: Temporal histories read raw (without the codec: IDs, search attributes, marker
metadata, failure types), every log line of every process, every row of every table in
fiflow's database, and the API's error bodies. Back-office errors that quote their input
(as real providers do) are part of the run, so their texts are tested too.

It runs on its own `fiflow up` stack, so the log holds exactly what these flows produced,
with the rule files' waits shortened to seconds.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import re
import shutil
import sqlite3
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from temporalio.client import Client

from tests.e2e.quick_rules import quick_triggers
from tests.e2e.stack import CHANNEL_KEY, REVIEWER_KEY, SYSTEM_KEY, RunningStack, start_stack
from tests.e2e.waiting import eventually

RULES = Path(__file__).resolve().parents[2] / "fiflow" / "rules"
CANARY_1 = "cust-canary-01"  # approved outright (strong profile)
CANARY_2 = "cust-canary-02"  # referred (borderline profile)
MERCHANT = "ZZCANARY MERCHANT"
AMOUNT = "8765.43"
CREDIT_AMOUNT = "4321.98"
INCOME = "7345.67"
CODE = re.compile(r"Reply YES (\d{4})")
# Staff read every customer's objects; a channel key reads only its session's customer.
ADMIN_KEY = {"X-API-Key": "local-admin-key"}
# Reviewing needs a person (a staff key); the shared reviewer key where there are none.
STAFF_REVIEWER_KEYS = ({"X-API-Key": "local-reviewer-1-key"}, REVIEWER_KEY)


def quick_rules(target: Path) -> Path:
    """The shipped rules with every wait the canary flows pass through cut to seconds."""
    # Every shipped rule file, so a rule set added later is found here too.
    shutil.copytree(RULES, target)
    alerts = yaml.safe_load((RULES / "alerts.yaml").read_text(encoding="utf-8"))
    for step in alerts["alert_types"]["card_fraud_suspected"]["escalation"]:
        step["wait"] = "PT2S"
    triggers = yaml.safe_load((RULES / "triggers.yaml").read_text(encoding="utf-8"))
    quick_triggers(triggers, give_up_after="PT10S")
    (target / "alerts.yaml").write_text(yaml.safe_dump(alerts), encoding="utf-8")
    (target / "triggers.yaml").write_text(yaml.safe_dump(triggers), encoding="utf-8")
    return target


@pytest.fixture(scope="module")
def canary_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    base = tmp_path_factory.mktemp("canary")
    env = {"FIFLOW_RULES_DIR": str(quick_rules(base / "rules")), "FIFLOW_LOG_LEVEL": "INFO"}
    running = start_stack(base / "state", workers=1, extra_env=env)
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10) as client:
        yield client


class Run:
    """The canary run's HTTP calls, and every API error body they received."""

    def __init__(self, http: httpx.AsyncClient, stack: RunningStack):
        self.http = http
        self.stack = stack
        # (what was asked, the error body): only the body is searched.
        self.error_bodies: list[tuple[str, str]] = []

    async def api(
        self, method: str, path: str, headers: dict[str, str], expect: int | set[int], **kw: Any
    ) -> Any:
        r = await self.http.request(method, f"{self.stack.api}{path}", headers=headers, **kw)
        if r.status_code >= 400:
            self.error_bodies.append((f"{method} {path} -> {r.status_code}", r.text))
        expected = expect if isinstance(expect, set) else {expect}
        assert r.status_code in expected, f"{method} {path}: {r.status_code} {r.text}"
        return r.json()

    async def sandbox(self, method: str, path: str, **kw: Any) -> Any:
        r = await self.http.request(method, f"{self.stack.sandbox}{path}", **kw)
        assert r.status_code < 300, r.text
        return r.json()

    async def fault(self, system: str, **kw: Any) -> None:
        await self.sandbox("POST", "/__sandbox/faults", json={"system": system, "echo": True, **kw})

    async def outbox(self, phone: str) -> list[dict[str, Any]]:
        return list(await self.sandbox("GET", "/__sandbox/sms/outbox", params={"to": phone}))

    async def finished(self, path: str, within: float = 45) -> Any:
        return await eventually(
            lambda: self.api("GET", path, ADMIN_KEY, 200),
            lambda v: v["run_status"] != "running",
            within,
        )

    async def submit(self, body: dict[str, Any]) -> Any:
        return await self.api("POST", "/v1/credit-applications", CHANNEL_KEY, 202, json=body)

    async def credit_state(self, app_id: str, state: str) -> Any:
        path = f"/v1/credit-applications/{app_id}"
        return await eventually(
            lambda: self.api("GET", path, ADMIN_KEY, 200),
            lambda v: v["status"] is not None and v["status"]["state"] == state,
            45,
        )


def alert_body(customer: dict[str, Any]) -> dict[str, Any]:
    return {
        "source_event_id": f"evt-{uuid.uuid4().hex[:16]}",
        "customer_id": customer["customer_id"],
        "alert_type": "card_fraud_suspected",
        "transaction": {
            "amount": AMOUNT,
            "currency": "USD",
            "merchant": MERCHANT,
            "occurred_at": datetime.now(UTC).isoformat(),
            "card_last4": customer["cards"][0]["last4"],
        },
    }


def application(customer_id: str) -> dict[str, Any]:
    return {
        "application_id": f"app-{uuid.uuid4().hex[:16]}",
        "customer_id": customer_id,
        "product": "credit_card",
        "requested_amount": CREDIT_AMOUNT,
        "stated_monthly_income": INCOME,
        "consent": {"credit_pull": True, "given_at": datetime.now(UTC).isoformat()},
    }


async def three_alerts(run: Run, canary: dict[str, Any]) -> None:
    """Confirm one alert, contest one, leave one unanswered to the end of its ladder."""
    phone = canary["phone"]
    ids = [
        (await run.api("POST", "/v1/alerts", SYSTEM_KEY, 202, json=alert_body(canary)))["alert_id"]
        for _ in range(3)
    ]
    # The canary's credit flows text the same number meanwhile: count the alerts' texts.
    texts = await eventually(
        lambda: run.outbox(phone),
        lambda m: sum(bool(CODE.search(t["body"])) for t in m) >= 3,
        30.0,
    )
    codes = [m.group(1) for t in texts if (m := CODE.search(t["body"]))]
    assert len(codes) == 3, texts
    # The fraud and card systems fail once each with an error that quotes the request.
    await run.fault("fraud", status_code=500, remaining=1)
    await run.fault("card", status_code=503, remaining=1)
    for reply in (f"YES {codes[0]}", f"NO {codes[1]}"):
        r = await run.http.post(
            f"{run.stack.sandbox}/__sandbox/sms/inbound", json={"from": phone, "body": reply}
        )
        assert r.status_code == 200 and r.json()["webhook_status"] == 200, r.text
    states = []
    for alert_id in ids:
        done = await run.finished(f"/v1/alerts/{alert_id}")
        states.append(done["status"]["state"])
    assert sorted(states) == ["confirmed", "contested", "no_response"], states


async def credit_flows(run: Run) -> None:
    """Approve one application outright, one after a manager's review, compensate a third."""
    approved = await run.submit(application(CANARY_1))
    referred = await run.submit(application(CANARY_2))
    await run.credit_state(referred["application_id"], "awaiting_review")
    review = {"decision": "approve", "reviewer_id": "reviewer-1", "note": "known customer"}
    path = f"/v1/credit-applications/{referred['application_id']}/review"
    for key in STAFF_REVIEWER_KEYS:
        r = await run.http.post(f"{run.stack.api}{path}", json=review, headers=key)
        if r.status_code == 200:
            break
        run.error_bodies.append((f"review -> {r.status_code}", r.text))
    assert r.status_code == 200, run.error_bodies[-2:]
    await run.credit_state(approved["application_id"], "approved")
    await run.credit_state(referred["application_id"], "approved")

    # Billing refuses, quoting the request: the account just opened is closed again.
    await run.fault("billing", status_code=422)
    try:
        failing = await run.submit(application(CANARY_1))
        await run.credit_state(failing["application_id"], "failed")
    finally:
        await run.sandbox("DELETE", "/__sandbox/faults", params={"system": "billing"})


def ivr_event(iid: str, n: int, type_: str, phone: str, **attrs: Any) -> dict[str, Any]:
    return {
        "event_id": f"{iid}-{n}",
        "channel": "ivr",
        "type": type_,
        "caller": phone,
        "attributes": attrs,
        "occurred_at": datetime.now(UTC).isoformat(),
    }


async def interaction_with_follow_up(run: Run, canary: dict[str, Any]) -> None:
    """A repeat IVR caller whose self-service failed: a ticket, then a follow-up SMS."""
    phone = canary["phone"]

    async def post(iid: str, body: dict[str, Any]) -> None:
        # The API looks the caller up in the CRM, which may be failing: retry like an IVR.
        path = f"/v1/interactions/{iid}/events"
        await eventually(
            lambda: run.http.post(f"{run.stack.api}{path}", json=body, headers=CHANNEL_KEY),
            lambda r: r.status_code != 503 or run.error_bodies.append((path, r.text)),
            30.0,
        )
        await run.api("POST", path, CHANNEL_KEY, 202, json=body)

    first = f"ivr-{uuid.uuid4().hex[:10]}"
    await post(first, ivr_event(first, 1, "menu_selected", phone, topic="tech_support"))
    await post(first, ivr_event(first, 2, "interaction_ended", phone))
    await run.finished(f"/v1/interactions/{first}")
    second = f"ivr-{uuid.uuid4().hex[:10]}"
    await post(second, ivr_event(second, 1, "menu_selected", phone, topic="tech_support"))
    await post(second, ivr_event(second, 2, "self_service_failed", phone, topic="tech_support"))
    await eventually(
        lambda: run.outbox(phone),
        lambda m: any("still open after self-service failed" in t["body"] for t in m),
        45,
    )
    tickets = await run.sandbox(
        "GET", "/__sandbox/crm/tickets", params={"customer_id": canary["customer_id"]}
    )
    assert tickets, "the follow-up opened no ticket"


async def bad_input(run: Run, canary: dict[str, Any]) -> None:
    """Requests the API refuses, each carrying canary values."""
    body = alert_body(canary)
    body["transaction"]["amount"] = f"-{AMOUNT}"
    await run.api("POST", "/v1/alerts", SYSTEM_KEY, 422, json=body)
    body = alert_body(canary)
    body["transaction"]["currency"] = canary["name"]
    body["transaction"]["card_last4"] = canary["phone"]
    await run.api("POST", "/v1/alerts", SYSTEM_KEY, 422, json=body)
    body = alert_body(canary)
    body["customer_id"] = canary["name"]
    await run.api("POST", "/v1/alerts", SYSTEM_KEY, 422, json=body)
    await run.api("GET", f"/v1/alerts/{canary['phone']}", SYSTEM_KEY, {404, 422})
    iid = f"ivr-{uuid.uuid4().hex[:10]}"
    event = ivr_event(iid, 1, "menu_selected", canary["phone"][:-1], topic=MERCHANT)
    await run.api("POST", f"/v1/interactions/{iid}/events", CHANNEL_KEY, 422, json=event)
    app = application(canary["customer_id"])
    app["requested_amount"] = f"{AMOUNT}x"
    await run.api("POST", "/v1/credit-applications", CHANNEL_KEY, 422, json=app)
    r = await run.http.post(
        f"{run.stack.api}/v1/alerts",
        content=json.dumps(alert_body(canary))[:-3],
        headers={**SYSTEM_KEY, "content-type": "application/json"},
    )
    run.error_bodies.append((f"malformed alert -> {r.status_code}", r.text))
    assert r.status_code == 400, r.text


# --- what must not be found ---------------------------------------------------------------


def canary_values(canaries: list[dict[str, Any]], texts: list[str]) -> dict[str, re.Pattern[str]]:
    """Every canary value, as a pattern that does not match inside a longer word or number."""
    values: set[str] = {MERCHANT, "ZZCANARY", AMOUNT, "8,765.43", CREDIT_AMOUNT, "4,321.98"}
    values |= {INCOME, "7,345.67"}
    for c in canaries:
        values |= set(c["name"].split())
        e164 = c["phone"]
        area, exchange, line = e164[2:5], e164[5:8], e164[8:]
        values |= {e164, e164[1:], e164[2:], f"({area}) {exchange}-{line}"}
        values |= {f"{area}-{exchange}-{line}", f"{area} {exchange} {line}", f"{exchange}-{line}"}
        values |= {card["last4"] for card in c["cards"]}
        values |= {n for card in c["cards"] for n in (card["card_id"], card["card_id"][5:])}
        values |= {n for a in c["accounts"] for n in (a["account_id"], a["account_id"][4:])}
    values |= set(texts)
    last4s = {card["last4"] for c in canaries for card in c["cards"]}
    # Four digits also occur inside IDs ("-9173-" in a UUID): those must stand alone.
    return {
        v: re.compile(
            ("(?<![\\w-])" if v in last4s else "(?<![0-9A-Za-z])")
            + re.escape(v)
            + "(?![0-9A-Za-z])",
            re.IGNORECASE,
        )
        for v in values
    }


def _decoded_payloads(node: Any, out: list[str]) -> None:
    """Every base64 payload field of a history, decoded: search attributes and markers too."""
    if isinstance(node, dict):
        for key, value in node.items():
            if isinstance(value, str) and key == "data":
                _b64(value, out)
            elif key == "metadata" and isinstance(value, dict):
                for meta in value.values():
                    if isinstance(meta, str):
                        _b64(meta, out)
            _decoded_payloads(value, out)
    elif isinstance(node, list):
        for item in node:
            _decoded_payloads(item, out)


def _b64(text: str, out: list[str]) -> None:
    with contextlib.suppress(binascii.Error, ValueError):
        out.append(base64.b64decode(text, validate=True).decode("utf-8", errors="replace"))


async def temporal_haystacks(stack: RunningStack) -> dict[str, str]:
    """Each workflow's raw history (no codec), its ID, search attributes and memo."""
    raw = await Client.connect(stack.temporal)  # the default converter: no codec
    found: dict[str, str] = {}
    async for wf in raw.list_workflows(""):
        history = await raw.get_workflow_handle(wf.id, run_id=wf.run_id).fetch_history()
        as_dict = history.to_json_dict()
        decoded: list[str] = []
        _decoded_payloads(as_dict, decoded)
        described = await raw.get_workflow_handle(wf.id, run_id=wf.run_id).describe()
        found[f"temporal {wf.id}/{wf.run_id}"] = "\n".join(
            [
                wf.id,
                json.dumps(as_dict),
                *decoded,
                repr(described.typed_search_attributes),
                repr(described.raw_description.execution_config),
            ]
        )
    assert found, "no workflows in the canary stack's Temporal"
    return found


def database_haystacks(state_dir: Path) -> dict[str, str]:
    """Every row of every table of fiflow's database."""
    found: dict[str, str] = {}
    with sqlite3.connect(state_dir / "fiflow.db") as db:
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        for table in tables:
            rows = db.execute(f'SELECT * FROM "{table}"').fetchall()  # noqa: S608 - names from sqlite
            for n, row in enumerate(rows):
                text = " | ".join(map(str, row))
                found[f"db {table} row {n}"] = text
    assert any(k.startswith("db credit_reports") for k in found), sorted(found)
    return found


def hits(haystacks: dict[str, str], patterns: dict[str, re.Pattern[str]]) -> list[str]:
    """Where each canary value was found, with a little context."""
    report = []
    for where, text in haystacks.items():
        for value, pattern in patterns.items():
            for m in pattern.finditer(text):
                context = text[max(0, m.start() - 80) : m.end() + 80].replace("\n", "⏎")
                report.append(f"{where}: {value!r} in …{context}…")
    return report


async def test_no_canary_value_is_kept_in_clear_anywhere(
    canary_stack: RunningStack, http: httpx.AsyncClient
) -> None:
    started = time.monotonic()
    run = Run(http, canary_stack)
    customers = await run.sandbox("GET", "/__sandbox/customers")
    by_id = {c["customer_id"]: c for c in customers}
    canary1, canary2 = by_id[CANARY_1], by_id[CANARY_2]

    # The SMS gateway and the CRM fail twice and once, quoting what they were sent.
    await run.fault("sms", status_code=500, remaining=2)
    await run.fault("crm", status_code=500, remaining=1)
    await asyncio.gather(
        three_alerts(run, canary1),
        credit_flows(run),
        interaction_with_follow_up(run, canary2),
        bad_input(run, canary1),
    )
    # A final refusal with an echo: the SMS gateway says the number is invalid (Twilio
    # 21211, final) for the next text, which the no-answer path of an alert sends.
    await run.fault("sms", status_code=400, remaining=1)
    alert = await run.api("POST", "/v1/alerts", SYSTEM_KEY, 202, json=alert_body(canary2))
    await run.finished(f"/v1/alerts/{alert['alert_id']}")
    calls = await run.sandbox("GET", "/__sandbox/calls")
    echoed = [c for c in calls if c["fault"]]
    assert {c["system"] for c in echoed} >= {"sms", "crm", "fraud", "card", "billing"}, echoed

    texts = [m["body"] for c in (canary1, canary2) for m in await run.outbox(c["phone"])]
    patterns = canary_values([canary1, canary2], texts)
    haystacks = await temporal_haystacks(canary_stack)
    assert canary_stack.stop() == 0
    haystacks |= {
        f"log line {n}": line for n, line in enumerate(canary_stack.output().splitlines(), 1)
    }
    haystacks |= database_haystacks(canary_stack.state_dir)
    haystacks |= {f"api error body of {asked}": body for asked, body in run.error_bodies}
    assert len(run.error_bodies) >= 7

    found = hits(haystacks, patterns)
    print(f"canary run and scan: {time.monotonic() - started:.1f}s, {len(haystacks)} places")
    assert not found, "canary values found:\n" + "\n".join(found[:200])

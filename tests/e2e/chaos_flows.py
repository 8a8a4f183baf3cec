"""Flows the chaos suite drives through a `fiflow up` stack, and how each is checked.

Every flow knows its business steps and, from the sandbox (the systems that would feel it),
checks that each step took effect exactly once: one idempotency key per step, exactly one
call the sandbox applied for it (`applied` in its call log: a replay, a refused write or a
read applies nothing, a write whose answer a fault lost does), and the effect itself where
the sandbox keeps one (SMS outbox, bureau pulls, core accounts, CRM notes).
Checks return a list of problems rather than asserting, so a failure lists all of them.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from tests.e2e.stack import (
    CHANNEL_KEY,
    REVIEWER_PERSON_KEY,
    SYSTEM_KEY,
    RunningStack,
    channel_for,
)

CODE = re.compile(r"Reply YES (\d{4})")
RETRYABLE = frozenset({429, 500, 502, 503, 504})
FINAL_APPLICATION_STATES = frozenset({"approved", "declined", "failed"})


async def api(
    http: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    headers: dict[str, str],
    json_body: Any = None,
    expect: Iterable[int] = (200, 202),
    within: float = 60.0,
) -> httpx.Response:
    """One API call as a channel app makes it: retried on 429/5xx and lost connections."""
    wanted = set(expect)
    deadline = time.monotonic() + within
    while True:
        try:
            r = await http.request(method, url, headers=headers, json=json_body)
        except httpx.TransportError as exc:
            last = f"{type(exc).__name__} {exc}"
        else:
            if r.status_code in wanted:
                return r
            if r.status_code not in RETRYABLE:
                raise AssertionError(f"{method} {url}: {r.status_code} {r.text}")
            last = f"{r.status_code} {r.text[:300]}"
        if time.monotonic() > deadline:
            raise AssertionError(f"{method} {url} not answered within {within}s; last: {last}")
        await asyncio.sleep(0.3)  # a retry's backoff, not a wait for state


class Feed:
    """Everything one sandbox inspection endpoint lists, read on with `after`/`wait`."""

    def __init__(self, http: httpx.AsyncClient, url: str, **params: str) -> None:
        self._http, self._url, self._params = http, url, params
        self.items: list[dict[str, Any]] = []

    async def read(self, wait: float = 0.0) -> list[dict[str, Any]]:
        """Whatever came since the last read (waiting up to `wait` s for something)."""
        params = {**self._params, "after": str(len(self.items)), "wait": str(wait)}
        r = await self._http.get(self._url, params=params, timeout=wait + 10)
        r.raise_for_status()
        new: list[dict[str, Any]] = r.json()
        self.items.extend(new)
        return new

    async def until(
        self,
        done: Callable[[list[dict[str, Any]]], bool],
        within: float,
        missing: Callable[[list[dict[str, Any]]], str],
    ) -> list[dict[str, Any]]:
        """Read on until `done(items)`; fail saying what is still missing."""
        deadline = time.monotonic() + within
        await self.read()
        while not done(self.items):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"not within {within}s: {missing(self.items)}")
            await self.read(wait=min(remaining, 10.0))
        return self.items


def by_recipient(messages: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """SMS messages grouped by their `to` number."""
    grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for m in messages:
        grouped[m["to"]].append(m)
    return grouped


def write_effects(calls: list[dict[str, Any]], key: str) -> int:
    """How many calls with this key the sandbox applied (its call log's `applied`)."""
    return sum(1 for c in calls if c["idempotency_key"] == key and c["applied"])


def step_problems(what: str, calls: list[dict[str, Any]], expected_keys: set[str]) -> list[str]:
    """The calls of one flow's steps on one system: exactly the expected keys, each applied
    exactly once, and each answered 2xx at least once (its sender learned it took effect)."""
    problems: list[str] = []
    keys = {c["idempotency_key"] for c in calls}
    if keys != expected_keys:
        got = sorted(map(str, keys))
        problems.append(f"{what}: idempotency keys {got} != {sorted(expected_keys)}")
    for key in sorted(expected_keys & keys):
        statuses = [c["status_code"] for c in calls if c["idempotency_key"] == key]
        if (applied := write_effects(calls, key)) != 1:
            problems.append(f"{what}: {key} applied {applied} times (statuses {statuses})")
        if not any(code < 300 for code in statuses):
            problems.append(f"{what}: {key} never answered 2xx (statuses {statuses})")
    return problems


def keyed(calls: list[dict[str, Any]], prefix: str) -> list[dict[str, Any]]:
    """The calls whose idempotency key starts with `prefix` (one flow's steps)."""
    return [c for c in calls if (c["idempotency_key"] or "").startswith(prefix)]


def texts_to(outbox: dict[str, list[dict[str, Any]]], phone: str) -> list[str]:
    """The SMS texts sent to `phone`, in order."""
    return [m["body"] for m in outbox.get(phone, [])]


async def get_json(http: httpx.AsyncClient, url: str, headers: dict[str, str]) -> dict[str, Any]:
    """A flow's view from the API, as a channel app reads it."""
    return dict((await api(http, "GET", url, headers=headers)).json())


async def until_completed(get: Callable[[], Any], within: float, what: str) -> dict[str, Any]:
    """Poll a flow's view until its run completed; fail naming `what`."""
    return dict(
        await poll(get, lambda v: v["run_status"] == "completed", within, f"{what} completed")
    )


@dataclass
class Pool:
    """This module's customers: each flow gets SMS customers nobody else used."""

    customers: list[dict[str, Any]]
    profiles: dict[str, dict[str, Any]]
    taken: set[str] = field(default_factory=set)

    def take(self, *, where: Callable[[dict[str, Any]], bool] = lambda p: True) -> dict[str, Any]:
        """An SMS customer with a card, whose credit profile passes `where`."""
        for c in self.customers:
            cid = c["customer_id"]
            if (
                cid not in self.taken
                and cid.startswith("cust-")
                and int(cid[5:]) > 24  # the fixed rows belong to other tests' expectations
                and c.get("cards")
                and c.get("phone", "").startswith("+")
                and " " not in c["phone"]
                and c["preferred_channel"] == "sms"
                and where(self.profiles.get(cid, {}))
            ):
                self.taken.add(cid)
                return c
        raise RuntimeError("the chaos stack has no unused customer of that kind left")


class Flow:
    """What every flow's driver shares: its view from the API, polled until the run completed."""

    @property
    def name(self) -> str:
        raise NotImplementedError

    async def view(self, http: httpx.AsyncClient, stack: RunningStack) -> dict[str, Any]:
        raise NotImplementedError

    async def finished(self, http: httpx.AsyncClient, stack: RunningStack, within: float) -> dict:
        return await until_completed(lambda: self.view(http, stack), within, self.name)


# --- fraud alerts --------------------------------------------------------------------------


@dataclass
class AlertFlow(Flow):
    """An SMS fraud alert answered YES or NO: alert SMS, reply, fraud write, actions."""

    customer: dict[str, Any]
    answer: str  # "YES" or "NO"
    tag: str
    alert_id: str = ""
    code: str = ""
    source_event_id: str = field(default_factory=lambda: f"evt-{uuid.uuid4().hex[:16]}")

    @property
    def name(self) -> str:
        return f"alert {self.alert_id}"

    @property
    def phone(self) -> str:
        return str(self.customer["phone"])

    @property
    def outcome(self) -> str:
        return "confirm" if self.answer == "YES" else "contest"

    @property
    def prefix(self) -> str:
        return f"alert-{self.alert_id}:"

    async def start(self, http: httpx.AsyncClient, stack: RunningStack) -> None:
        body = {
            "source_event_id": self.source_event_id,
            "customer_id": self.customer["customer_id"],
            "alert_type": "card_fraud_suspected",
            "transaction": {
                "amount": "123.45",  # under the pre-block amount: no card action before replies
                "currency": "USD",
                "merchant": self.tag,
                "occurred_at": datetime.now(UTC).isoformat(),
                "card_last4": self.customer["cards"][0]["last4"],
            },
        }
        r = await api(http, "POST", f"{stack.api}/v1/alerts", headers=SYSTEM_KEY, json_body=body)
        self.alert_id = r.json()["alert_id"]

    def texts(self, outbox: dict[str, list[dict[str, Any]]]) -> list[str]:
        return texts_to(outbox, self.phone)

    def sms_seen(self, outbox: dict[str, list[dict[str, Any]]]) -> bool:
        """Whether its alert SMS is out (and, if so, takes the reply code from it)."""
        for text in self.texts(outbox):
            if self.tag in text and (m := CODE.search(text)):
                self.code = m.group(1)
                return True
        return False

    def notified(self, outbox: dict[str, list[dict[str, Any]]]) -> bool:
        return len(self.texts(outbox)) >= 2

    async def reply(self, http: httpx.AsyncClient, stack: RunningStack, within: float = 60) -> None:
        """The customer's reply, redelivered (same message SID) until the webhook takes it."""
        assert self.code, f"no alert SMS seen for {self.alert_id}"
        sid = f"SMchaos{self.alert_id[-20:]}"
        body = {"from": self.phone, "body": f"{self.answer} {self.code}", "message_sid": sid}
        deadline = time.monotonic() + within
        while True:
            try:
                r = await http.post(f"{stack.sandbox}/__sandbox/sms/inbound", json=body)
                last = f"{r.status_code} {r.text[:300]}"
                if r.status_code == 200 and r.json()["webhook_status"] == 200:
                    return
            except httpx.TransportError as exc:
                last = repr(exc)
            if time.monotonic() > deadline:
                raise AssertionError(f"reply to {self.alert_id} not taken in {within}s: {last}")
            await asyncio.sleep(0.3)  # Twilio's redelivery, not a wait for state

    async def view(self, http: httpx.AsyncClient, stack: RunningStack) -> dict[str, Any]:
        return await get_json(http, f"{stack.api}/v1/alerts/{self.alert_id}", SYSTEM_KEY)

    def problems(
        self,
        view: dict[str, Any],
        calls: dict[str, list[dict[str, Any]]],
        outbox: dict[str, list[dict[str, Any]]],
        cards: dict[tuple[str, str], str],
    ) -> list[str]:
        me = f"alert {self.alert_id} ({self.answer})"
        status = view["status"] or {}
        found: list[str] = []
        want_state = "confirmed" if self.answer == "YES" else "contested"
        if status.get("state") != want_state or (status.get("reply") or {}).get("outcome") != (
            self.outcome
        ):
            found.append(f"{me}: state {status.get('state')}, reply {status.get('reply')}")
        failed = [a["action"] for a in status.get("actions", []) if a["status"] == "failed"]
        if failed:
            found.append(f"{me}: failed actions {failed}")
        fraud = [c for c in calls["fraud"] if (c["body"] or {}).get("case_ref") == self.alert_id]
        found += step_problems(
            f"{me} fraud", fraud, {f"{self.prefix}record_fraud_outcome:{self.outcome}"}
        )
        mine = {s: keyed(calls[s], self.prefix) for s in ("card", "contact_center", "sms")}
        contested = self.answer == "NO"
        found += step_problems(
            f"{me} card", mine["card"], {f"{self.prefix}block_card:contest"} if contested else set()
        )
        found += step_problems(
            f"{me} callback",
            mine["contact_center"],
            {f"{self.prefix}schedule_callback:contest"} if contested else set(),
        )
        found += step_problems(
            f"{me} sms",
            mine["sms"],
            {f"{self.prefix}send:alert:sms", f"{self.prefix}notify_customer:{self.outcome}"},
        )
        texts = self.texts(outbox)
        told = "we've blocked card" if contested else "marked"
        if len(texts) != 2 or told not in texts[-1]:
            found.append(f"{me}: texts to the customer {texts}")
        card = cards[(self.customer["customer_id"], self.customer["cards"][0]["last4"])]
        if card != ("blocked" if contested else "active"):
            found.append(f"{me}: card is {card}")
        return found


# --- credit applications -------------------------------------------------------------------


@dataclass
class ApplicationFlow:
    """A credit application, reviewed (approved) by a person if the rules refer it."""

    customer: dict[str, Any]
    application_id: str = field(default_factory=lambda: f"app-{uuid.uuid4().hex[:16]}")
    reviewed: bool = False

    async def start(self, http: httpx.AsyncClient, stack: RunningStack) -> None:
        body = {
            "application_id": self.application_id,
            "customer_id": self.customer["customer_id"],
            "product": "credit_card",
            "requested_amount": "3000.00",
            "stated_monthly_income": "6000.00",
            "consent": {"credit_pull": True, "given_at": datetime.now(UTC).isoformat()},
        }
        url = f"{stack.api}/v1/credit-applications"
        await api(http, "POST", url, headers=CHANNEL_KEY, json_body=body, expect=(202,))

    async def view(self, http: httpx.AsyncClient, stack: RunningStack) -> dict[str, Any]:
        url = f"{stack.api}/v1/credit-applications/{self.application_id}"
        # The applicant's own app.
        return await get_json(http, url, channel_for(self.customer["customer_id"]))

    async def drive(self, http: httpx.AsyncClient, stack: RunningStack, within: float) -> dict:
        """Review it when referred; return its view once the run completed."""

        async def step() -> dict[str, Any]:
            v = await self.view(http, stack)
            state = (v["status"] or {}).get("state")
            if state == "awaiting_review" and not self.reviewed:
                url = f"{stack.api}/v1/credit-applications/{self.application_id}/review"
                body = {"decision": "approve", "note": "chaos suite"}
                await api(http, "POST", url, headers=REVIEWER_PERSON_KEY, json_body=body)
                self.reviewed = True
            return v

        return await until_completed(step, within, f"application {self.application_id}")

    def problems(
        self,
        view: dict[str, Any],
        calls: dict[str, list[dict[str, Any]]],
        sandbox: dict[str, Any],
        outbox: dict[str, list[dict[str, Any]]],
    ) -> list[str]:
        aid, cid = self.application_id, self.customer["customer_id"]
        me = f"application {aid}"
        prefix = f"credit-{aid}:"
        status = view["status"] or {}
        state = status.get("state")
        found: list[str] = []
        if state not in ("approved", "declined"):
            found.append(f"{me}: ended {state} ({status.get('failure')})")
        pulls = [p for p in sandbox["pulls"] if p["reference"] == aid]
        hard = [p for p in pulls if p["kind"] == "hard"]
        soft = [p for p in pulls if p["kind"] == "soft"]
        if len(hard) > 1 or len(soft) != 1:
            found.append(f"{me}: {len(soft)} soft and {len(hard)} hard pulls")
        bureau = keyed(calls["bureau"], prefix)
        found += step_problems(
            f"{me} bureau", bureau, {p["idempotency_key"] for p in pulls} | {f"{prefix}soft_pull"}
        )
        accounts = [a for a in sandbox["accounts"] if a["reference"] == aid]
        billing = [b for b in sandbox["billing"] if b["customer_id"] == cid]
        if state == "approved":
            if [a["status"] for a in accounts] != ["open"]:
                found.append(f"{me}: core accounts {accounts}")
            if [b["status"] for b in billing] != ["active"]:
                found.append(f"{me}: billing accounts {billing}")
        elif accounts or billing:
            found.append(f"{me}: {state} but accounts {accounts} billing {billing}")
        core = [c for c in keyed(calls["core_banking"], prefix) if c["method"] == "POST"]
        found += step_problems(
            f"{me} core banking", core, {f"{prefix}open_account"} if state == "approved" else set()
        )
        if state in ("approved", "declined"):
            sms = keyed(calls["sms"], prefix)
            found += step_problems(f"{me} sms", sms, {f"{prefix}notify_{state}:sms"})
        notes = [n for n in sandbox["notes"] if n["customer_id"] == cid]
        if len(notes) != 1:
            found.append(f"{me}: CRM notes {[n['text'] for n in notes]}")
        texts = texts_to(outbox, self.customer["phone"])
        if len(texts) != 1:
            found.append(f"{me}: texts to the applicant {texts}")
        return found


# --- follow-ups ----------------------------------------------------------------------------


@dataclass
class FollowUpFlow(Flow):
    """A follow-up on an open ticket: one SMS, then it gives up (quick rules: one attempt)."""

    customer: dict[str, Any]
    ticket_id: str = ""
    follow_up_id: str = field(default_factory=lambda: f"fu-{uuid.uuid4().hex[:12]}")

    async def open_ticket(self, http: httpx.AsyncClient, stack: RunningStack) -> None:
        """The CRM ticket it follows up on (opened before any fault window)."""
        r = await http.post(
            f"{stack.sandbox}/crm/customers/{self.customer['customer_id']}/tickets",
            json={"subject": "Card delivery", "category": "cards"},
        )
        assert r.status_code == 201, r.text
        self.ticket_id = r.json()["ticket_id"]

    async def start(self, http: httpx.AsyncClient, stack: RunningStack, due_in: float) -> None:
        body = {
            "follow_up_id": self.follow_up_id,
            "customer_id": self.customer["customer_id"],
            "ticket_id": self.ticket_id,
            "reason": "card_delivery",
            "follow_up_at": (datetime.now(UTC) + timedelta(seconds=due_in)).isoformat(),
        }
        url = f"{stack.api}/v1/follow-ups"
        await api(http, "POST", url, headers=SYSTEM_KEY, json_body=body, expect=(202,))

    @property
    def name(self) -> str:
        return f"follow-up {self.follow_up_id}"

    async def view(self, http: httpx.AsyncClient, stack: RunningStack) -> dict[str, Any]:
        return await get_json(http, f"{stack.api}/v1/follow-ups/{self.follow_up_id}", SYSTEM_KEY)

    def problems(
        self,
        view: dict[str, Any],
        calls: dict[str, list[dict[str, Any]]],
        sandbox: dict[str, Any],
        outbox: dict[str, list[dict[str, Any]]],
    ) -> list[str]:
        me = f"follow-up {self.follow_up_id}"
        prefix = f"followup-{self.follow_up_id}:"
        status = view["status"] or {}
        found: list[str] = []
        attempts = [(a["channel"], a["outcome"]) for a in status.get("attempts", [])]
        if status.get("outcome") != "gave_up" or attempts != [("sms", "sent")]:
            found.append(f"{me}: outcome {status.get('outcome')}, attempts {attempts}, "
                         f"path {status.get('path')}")  # fmt: skip
        found += step_problems(f"{me} sms", keyed(calls["sms"], prefix), {f"{prefix}contact1:sms"})
        found += step_problems(
            f"{me} crm", keyed(calls["crm"], prefix), {f"{prefix}contact1", f"{prefix}gave_up"}
        )
        notes = [n for n in sandbox["notes"] if n["customer_id"] == self.customer["customer_id"]]
        if len(notes) != 2:
            found.append(f"{me}: CRM notes {[n['text'] for n in notes]}")
        texts = texts_to(outbox, self.customer["phone"])
        if len(texts) != 1 or "following up" not in texts[0]:
            found.append(f"{me}: texts to the customer {texts}")
        return found


# --- shared --------------------------------------------------------------------------------


async def poll(get: Callable[[], Any], ok: Callable[[Any], bool], within: float, what: str) -> Any:
    """Poll `get` until `ok`; fail naming `what` and the last value."""
    deadline = time.monotonic() + within
    value = await get()
    while not ok(value):
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {within}s: {what}; last: {value!r}"[:2000])
        await asyncio.sleep(0.3)
        value = await get()
    return value


async def gather_limited(n: int, coros: Iterable[Any]) -> list[Any]:
    """Run coroutines at most `n` at a time, results in order."""
    gate = asyncio.Semaphore(n)

    async def one(c: Any) -> Any:
        async with gate:
            return await c

    return await asyncio.gather(*(one(c) for c in coros))


async def sandbox_state(http: httpx.AsyncClient, stack: RunningStack) -> dict[str, Any]:
    """The effects the sandbox keeps: bureau pulls, accounts, billing, CRM notes, cards."""
    base = f"{stack.sandbox}/__sandbox"
    paths = {
        "pulls": "/bureau/pulls",
        "accounts": "/core-banking/accounts",
        "billing": "/billing/accounts",
        "notes": "/crm/notes",
        "customers": "/customers",
    }
    out: dict[str, Any] = {}
    for name, path in paths.items():
        r = await http.get(base + path)
        r.raise_for_status()
        out[name] = r.json()
    out["cards"] = {
        (c["customer_id"], card["last4"]): card["status"]
        for c in out["customers"]
        for card in c["cards"]
    }
    return out


async def calls_by_system(http: httpx.AsyncClient, stack: RunningStack) -> dict[str, list]:
    """The sandbox's call log, per system."""
    r = await http.get(f"{stack.sandbox}/__sandbox/calls")
    r.raise_for_status()
    grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for c in r.json():
        grouped[c["system"]].append(c)
    return grouped


def unkeyed_writes(calls: dict[str, list[dict[str, Any]]]) -> list[str]:
    """Writes to a back-office system that carried no idempotency key (convention 6)."""
    return [
        f"{c['system']} {c['method']} {c['path']}"
        for cs in calls.values()
        for c in cs
        # Tickets are opened by the test itself, standing in for an agent.
        if c["method"] == "POST" and not c["idempotency_key"] and not c["path"].endswith("/tickets")
    ]


def status_of(state_dir: Path) -> dict[str, dict[str, Any]]:
    """`fiflow up`'s status.json, per part."""
    data = json.loads((state_dir / "status.json").read_text())
    return {p["name"]: p for p in data["parts"]}

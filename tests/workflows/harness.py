"""Workflow-test harness: the real activities, over recording back-office stand-ins.

The activity classes are fiflow's own; only the HTTP clients under them are replaced by
objects that record each call (and its idempotency key) the way the sandbox would.
"""

from __future__ import annotations

import asyncio
import random
import re
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from temporalio.client import Client, WorkflowHandle
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment

from fiflow.activities.backoffice import (
    CardActivities,
    ContactCenterActivities,
    CrmActivities,
    FraudActivities,
)
from fiflow.activities.conversations import ConversationActivities
from fiflow.activities.messaging import MessagingActivities
from fiflow.activities.rules import RuleActivities
from fiflow.domain.alerts import AlertInput, AlertRequest, AlertStatus, Transaction
from fiflow.domain.conversations import ConversationSnapshot
from fiflow.domain.customers import Card, Channel, Customer
from fiflow.domain.keys import address_hash, alert_id_for, conversation_workflow_id
from fiflow.integrations.database import create_db_engine, upgrade_database
from fiflow.integrations.http import BusinessError, TransientError
from fiflow.integrations.optouts import OptOutStore
from fiflow.integrations.rules_store import RuleStore
from fiflow.integrations.settings import Settings
from fiflow.starters.alerts_client import deliver_sms, start_alert
from fiflow.workers.main import build_worker
from fiflow.workflows.fraud_alert import FraudAlertWorkflow


@dataclass
class Call:
    """One recorded back-office write."""

    system: str
    key: str
    body: dict[str, Any]


@dataclass
class Backoffice:
    """Recording stand-ins for every back-office client; writes are idempotent by key."""

    customers: dict[str, Customer] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)
    sms: list[Call] = field(default_factory=list)
    push: list[Call] = field(default_factory=list)
    failures: dict[str, int] = field(default_factory=dict)  # system -> transient failures left

    def _maybe_fail(self, system: str) -> None:
        left = self.failures.get(system, 0)
        if left:
            self.failures[system] = left - 1
            raise TransientError(system, "HTTP 500 injected")

    def _write(self, system: str, key: str, body: dict[str, Any]) -> str:
        self._maybe_fail(system)
        if not any(c.system == system and c.key == key for c in self.calls):
            self.calls.append(Call(system, key, body))
        return f"{system}-{len(self.calls)}"

    def of(self, system: str) -> list[Call]:
        """Recorded writes to one system."""
        return [c for c in self.calls if c.system == system]

    # CRM
    async def get_customer(self, customer_id: str) -> Customer:
        self._maybe_fail("crm")
        if customer_id not in self.customers:
            raise BusinessError("crm", "HTTP 404 unknown customer", status=404, code="not_found")
        return self.customers[customer_id]

    async def add_note(self, customer_id: str, text: str, category: str, key: str) -> str:
        return self._write("crm", key, {"customer_id": customer_id, "text": text})

    # fraud, cards, contact center
    async def record_outcome(
        self, case_ref: str, customer_id: str, outcome: str, alert_type: str, key: str
    ) -> str:
        return self._write("fraud", key, {"case_ref": case_ref, "outcome": outcome})

    async def set_blocked(
        self, customer_id: str, card_last4: str, blocked: bool, reason: str, key: str
    ) -> str:
        self._write("card", key, {"card_last4": card_last4, "blocked": blocked})
        return "blocked" if blocked else "active"

    async def schedule_callback(
        self, customer_id: str, reason: str, priority: str, reference: str, key: str
    ) -> str:
        return self._write("contact_center", key, {"reason": reason, "priority": priority})

    # messaging
    async def send(self, *args: Any) -> str:
        if len(args) == 3:  # SmsClient.send(to, body, key)
            to, body, key = args
            self._maybe_fail("sms")
            if not any(m.key == key for m in self.sms):
                self.sms.append(Call("sms", key, {"to": to, "body": body}))
            return f"SM{len(self.sms)}"
        device, title, body, actions, data, key = args
        self._maybe_fail("push")
        if not any(m.key == key for m in self.push):
            self.push.append(Call("push", key, {"device_id": device, "body": body, **data}))
        return f"push-{len(self.push)}"

    def sms_to(self, phone: str) -> list[str]:
        """Bodies of the SMS sent to a number, oldest first."""
        return [m.body["body"] for m in self.sms if m.body["to"] == phone]


def new_phone() -> str:
    """A phone number no other test uses (conversations are keyed by the number)."""
    return "+1555" + "".join(random.choices("0123456789", k=7))


def sms_customer(**kw: Any) -> Customer:
    """A customer who is reached by SMS, with card 4242."""
    base: dict[str, Any] = {
        "customer_id": f"cust-{uuid.uuid4().hex[:8]}",
        "name": "Test Person",
        "phone": new_phone(),
        "preferred_channel": Channel.SMS,
        "cards": [Card(card_id="card-1", last4="4242")],
    }
    return Customer(**{**base, **kw})


def alert_request(
    customer: Customer, amount: str = "912.00", merchant: str = "ACME Inc"
) -> AlertRequest:
    """An alert on the customer's card."""
    return AlertRequest(
        source_event_id=f"evt-{uuid.uuid4().hex[:12]}",
        customer_id=customer.customer_id,
        alert_type="card_fraud_suspected",
        transaction=Transaction(
            amount=Decimal(amount),
            currency="USD",
            merchant=merchant,
            occurred_at=datetime(2026, 11, 25, 12, 0, tzinfo=UTC),
            card_last4="4242",
        ),
    )


@dataclass
class Harness:
    """A running worker on the time-skipping server plus its stand-in back office."""

    env: WorkflowEnvironment
    settings: Settings
    office: Backoffice

    @property
    def client(self) -> Client:
        return self.env.client

    def add(self, customer: Customer) -> Customer:
        self.office.customers[customer.customer_id] = customer
        return customer

    async def start(self, req: AlertRequest) -> WorkflowHandle[Any, AlertStatus]:
        """Start an alert the way the API does."""
        alert_id = await start_alert(self.client, self.settings, req, datetime.now(UTC))
        return self.client.get_workflow_handle_for(FraudAlertWorkflow.run, f"alert-{alert_id}")

    async def finish(self, handle: WorkflowHandle[Any, AlertStatus]) -> AlertStatus:
        """The alert's result, in real time (for alerts that need no timer to end).

        Letting the server skip time here would also let it jump past the conversation's
        idle timeout the moment the alert ends, closing the conversation under the test.
        """
        return await self._result(handle)

    async def skip_to_end(self, handle: WorkflowHandle[Any, AlertStatus]) -> AlertStatus:
        """The alert's result, letting the server skip time over its timers until it ends."""
        # Only handles returned by start_workflow skip time on their own; ours come from the
        # API's helper, which returns the alert ID.
        async with self.env.time_skipping_unlocked():  # type: ignore[attr-defined]
            return await self._result(handle)

    async def skip(self, duration: timedelta) -> None:
        """Move the server's clock on by exactly `duration`, firing the timers due on the way.

        Unlike `skip_to_end`, it stops there: the conversation's idle timer, days later,
        does not fire behind the test's back.
        """
        await self.env.sleep(duration)

    async def _result(self, handle: WorkflowHandle[Any, AlertStatus]) -> AlertStatus:
        try:
            return await asyncio.wait_for(handle.result(), timeout=30)
        except Exception as err:
            causes: list[str] = []
            cause: BaseException | None = err
            while cause is not None:
                causes.append(f"{type(cause).__name__}: {cause}")
                cause = cause.__cause__
            raise AssertionError(" <- ".join(causes) + "\n" + await dump_history(handle)) from err

    def alert_input(self, req: AlertRequest) -> AlertInput:
        return AlertInput(
            alert_id=alert_id_for(self.settings.address_hash_key, req.source_event_id),
            request=req,
            received_at=datetime.now(UTC),
        )

    async def reply(self, phone: str, body: str, message_id: str | None = None) -> str:
        """A customer SMS, delivered the way the webhook does."""
        mid = message_id or f"SM{uuid.uuid4().hex}"
        await deliver_sms(
            self.client,
            self.settings,
            sender=phone,
            body=body,
            message_id=mid,
            received_at=datetime.now(UTC),
        )
        return mid

    def conversation_id(self, phone: str) -> str:
        return conversation_workflow_id("sms", address_hash(self.settings.address_hash_key, phone))

    async def snapshot(self, phone: str) -> ConversationSnapshot:
        """The conversation's snapshot query.

        On a loaded machine the test server can leave a query to a run that has just
        continued-as-new unanswered; each attempt gets a short deadline, within 20 s overall.
        """
        handle = self.client.get_workflow_handle(self.conversation_id(phone))
        deadline = time.monotonic() + 20
        while True:
            try:
                return await handle.query(
                    "snapshot", result_type=ConversationSnapshot, rpc_timeout=timedelta(seconds=3)
                )
            except RPCError as err:
                # The client's own deadline surfaces as CANCELLED "Timeout expired".
                timed_out = err.status is RPCStatusCode.DEADLINE_EXCEEDED or "Timeout" in str(err)
                if not timed_out or time.monotonic() > deadline:
                    raise

    async def wait_for_sms(self, phone: str, count: int, within: float = 10.0) -> list[str]:
        """Poll (with a deadline) until `count` SMS went to the number."""
        return await poll(lambda: self.office.sms_to(phone), lambda v: len(v) >= count, within)

    async def wait_status(
        self, handle: WorkflowHandle[Any, AlertStatus], check: Callable[[AlertStatus], bool]
    ) -> AlertStatus:
        async def get() -> AlertStatus:
            return await handle.query(FraudAlertWorkflow.status)

        return await poll_async(get, check)


REPLY_CODE = re.compile(r"Reply YES (\d{4})")


def code_in(body: str) -> str:
    """The reply code an alert SMS asks for."""
    match = REPLY_CODE.search(body)
    assert match, body
    return match.group(1)


async def poll(get: Callable[[], Any], ok: Callable[[Any], bool], within: float = 10.0) -> Any:
    """Re-read a value until it satisfies `ok`, or fail with the last value seen."""
    deadline = time.monotonic() + within
    value = get()
    while not ok(value):
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {within}s; last value: {value!r}")
        await asyncio.sleep(0.02)
        value = get()
    return value


async def poll_async(
    get: Callable[[], Any], ok: Callable[[Any], bool], within: float = 10.0
) -> Any:
    """Like `poll`, for an async getter."""
    deadline = time.monotonic() + within
    value = await get()
    while not ok(value):
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {within}s; last value: {value!r}")
        await asyncio.sleep(0.02)
        value = await get()
    return value


@asynccontextmanager
async def running_harness(
    env: WorkflowEnvironment, task_queue: str, tmp_path: Path, rules_dir: Path | None = None
) -> AsyncIterator[Harness]:
    """Start a worker with fiflow's activities over the stand-ins; yields the harness."""
    db_url = f"sqlite:///{tmp_path / 'fiflow.db'}"
    upgrade_database(db_url)
    # Always sandboxed here, whatever the environment says: the tests are the safety net.
    settings = Settings(
        task_queue=task_queue, database_url=db_url, rules_dir=rules_dir, workflow_sandbox=True
    )
    office = Backoffice()
    engine = create_db_engine(db_url)
    messaging = MessagingActivities(
        office,  # type: ignore[arg-type]
        office,  # type: ignore[arg-type]
        OptOutStore(engine),
        settings.address_hash_key,
    )
    crm = CrmActivities(office)  # type: ignore[arg-type]
    activities = [
        RuleActivities(RuleStore(rules_dir)).load_alert_rules,
        crm.get_customer,
        crm.add_note,
        FraudActivities(office).record_outcome,  # type: ignore[arg-type]
        CardActivities(office).set_blocked,  # type: ignore[arg-type]
        ContactCenterActivities(office).schedule_callback,  # type: ignore[arg-type]
        messaging.send_sms,
        messaging.send_push,
        messaging.set_sms_opt_out,
        ConversationActivities(
            env.client, settings.address_hash_key, settings.fi_name, settings.fi_help_text
        ).register_alert,
    ]
    worker = build_worker(env.client, settings, activities)
    harness = Harness(env, settings, office)
    try:
        async with worker:
            yield harness
    finally:
        engine.dispose()


async def dump_history(handle: WorkflowHandle[Any, Any]) -> str:
    """The workflow's events, one per line (for failure messages)."""
    lines = []
    async for ev in handle.fetch_history_events():
        kind = ev.WhichOneof("attributes") or "?"
        line = f"{ev.event_id} {ev.event_time.ToDatetime():%H:%M:%S.%f} {kind}"
        if "failed" in kind or "timed_out" in kind:
            line += " " + str(getattr(ev, kind)).replace("\n", " ")[:400]
        lines.append(line)
    return "\n".join(lines)

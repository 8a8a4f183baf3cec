"""Nothing lost while Temporal is down: replies wait in the inbox and apply once, in order.

The Temporal dev server is frozen with SIGSTOP rather than killed: the supervisor only
restarts a process that exited, so the server stays down exactly until SIGCONT, and calls
to it hang (the hardest case for the API: nothing refuses, everything times out).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
import uuid

import httpx
import pytest
import sqlalchemy as sa

from fiflow.integrations.database import create_db_engine
from tests.e2e.conftest import CustomerPool
from tests.e2e.stack import RunningStack
from tests.e2e.test_alerts_e2e import alert, alert_with_its_sms, calls
from tests.e2e.waiting import eventually

OUTCOMES = {"YES": ("confirmed", "confirm", "genuine"), "NO": ("contested", "contest", "fraud")}


@pytest.fixture(scope="module")
def stack(side_stack: RunningStack) -> RunningStack:
    """Not the shared stack: freezing its Temporal server must not stall the shared stack.
    The side stack (tests/e2e/conftest.py) keeps the relay's longest backoff short."""
    return side_stack


def _temporal_pid(stack: RunningStack) -> int:
    data = json.loads((stack.state_dir / "status.json").read_text())
    [part] = [p for p in data["parts"] if p["name"] == "temporal"]
    return int(part["pid"])


def _inbox_rows(stack: RunningStack) -> list[tuple[str, bool]]:
    """(MessageSid, delivered) of every inbox row, oldest first."""
    engine = create_db_engine(f"sqlite:///{stack.state_dir / 'fiflow.db'}")
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.text("SELECT message_id, delivered_at FROM inbound_inbox ORDER BY id")
            ).all()
    finally:
        engine.dispose()
    return [(r.message_id, r.delivered_at is not None) for r in rows]


async def test_replies_sent_while_temporal_is_down_are_applied_once_it_is_back(
    stack: RunningStack, http: httpx.AsyncClient
) -> None:
    started = time.monotonic()
    pool = CustomerPool((await http.get(f"{stack.sandbox}/__sandbox/customers")).json())
    customers = [pool.take() for _ in range(3)]
    alerts = [await alert_with_its_sms(http, stack, c) for c in customers]
    words = ["YES", "NO", "YES"]
    sids = [f"SM{uuid.uuid4().hex}" for _ in customers]

    async def reply(n: int) -> dict:
        r = await http.post(
            f"{stack.sandbox}/__sandbox/sms/inbound",
            json={"from": customers[n]["phone"], "body": f"{words[n]} {alerts[n][2]}",
                  "message_sid": sids[n]},
        )  # fmt: skip
        assert r.status_code == 200, r.text
        return dict(r.json())

    pid = _temporal_pid(stack)
    os.kill(pid, signal.SIGSTOP)
    try:
        answers = await asyncio.gather(*(reply(n) for n in range(3)))
        # Every webhook answered 200 with empty TwiML: the provider has nothing to retry.
        assert [(a["webhook_status"], "<Response></Response>" in a["webhook_body"])
                for a in answers] == [(200, True)] * 3  # fmt: skip
        # A provider retry of one of them is answered too, and not queued a second time.
        assert (await reply(0))["webhook_status"] == 200
        assert sorted(_inbox_rows(stack)) == sorted((sid, False) for sid in sids)
        # Still down a moment later: the relay has been failing and backing off meanwhile.
        await asyncio.sleep(2.0)
        assert all(not delivered for _, delivered in _inbox_rows(stack))
    finally:
        os.kill(pid, signal.SIGCONT)

    for (alert_id, _, _), word in zip(alerts, words, strict=True):
        state, outcome, fraud_outcome = OUTCOMES[word]
        done = await eventually(
            lambda a=alert_id: alert(http, stack, a),  # type: ignore[misc]
            lambda a: a["run_status"] == "completed",
            within=40,
        )
        assert done["status"]["state"] == state
        assert done["status"]["reply"]["outcome"] == outcome
        assert done["status"]["reply"]["message_id"] in sids
    await eventually(
        lambda: asyncio.to_thread(_inbox_rows, stack),
        lambda rows: sorted(rows) == sorted((sid, True) for sid in sids),
    )
    await asyncio.sleep(1.0)  # room for a duplicate delivery to act
    for (alert_id, _, _), word in zip(alerts, words, strict=True):
        fraud = await calls(http, stack, "fraud", alert_id)
        assert [c["body"]["outcome"] for c in fraud] == [OUTCOMES[word][2]], fraud
    assert time.monotonic() - started < 80

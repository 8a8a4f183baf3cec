"""The real-time path end to end on `fiflow up`: its nats-server, its `fiflow feed` consumer,
Temporal, the workers and the sandbox's SMS outbox.

A stack of its own: its conditions make three declines a fraud alert (so a window's outcome
is an SMS), it has no default preferences (so nothing else texts), and its consumer's ack
wait is short (so a killed consumer's messages come back within seconds).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import nats
import pytest
from nats.aio.client import Client as NatsClient

from fiflow.domain.keys import alert_id_for
from fiflow.integrations.nats_stream import REASON_HEADER
from fiflow.integrations.settings import Settings
from tests.e2e.conftest import CustomerPool
from tests.e2e.stack import SYSTEM_KEY, RunningStack, start_stack
from tests.e2e.waiting import eventually

RULES = Path(__file__).resolve().parents[2] / "fiflow" / "rules"
CONDITIONS = """
name: conditions
version: feed-e2e
home_country: US
home_currency: USD
conditions:
  - id: large_card_not_present
    when: not card_present and amount >= 5000
    starts: fraud_alert
    alert_type: card_not_present_suspected
  - id: three_declines
    when: status = "declined" and count(status = "declined", within 15m, per card) >= 3
    starts: fraud_alert
    alert_type: card_fraud_suspected
"""
SUBJECT = "fiflow.transactions.card"
STREAM, CONSUMER, DEAD_LETTERS = "FIFLOW_TRANSACTIONS", "fiflow-feed", "FIFLOW_DEAD_LETTERS"
NDJSON = {**SYSTEM_KEY, "Content-Type": "application/x-ndjson"}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    base = tmp_path_factory.mktemp("feed")
    rules = base / "rules"
    shutil.copytree(RULES, rules)
    (rules / "conditions.yaml").write_text(CONDITIONS)
    running = start_stack(
        base / "state",
        workers=1,
        feed_consumers=1,
        extra_env={"FIFLOW_RULES_DIR": str(rules), "FIFLOW_FEED_ACK_WAIT_SECONDS": "2"},
    )
    try:
        yield running
    finally:
        running.stop_in_background()  # its exit code is checked at the session's end


@pytest.fixture(scope="module")
def pool(stack: RunningStack) -> CustomerPool:
    return CustomerPool(httpx.get(f"{stack.sandbox}/__sandbox/customers", timeout=5).json())


@pytest.fixture
async def nc(stack: RunningStack) -> AsyncIterator[NatsClient]:
    client = await nats.connect(stack.nats)
    yield client
    await client.close()


def transaction(customer: dict, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "transaction_id": f"tx-{uuid.uuid4().hex[:16]}",
        "customer_id": customer["customer_id"],
        "card_last4": customer["cards"][0]["last4"],
        "amount": "6250.00",
        "currency": "USD",
        "merchant": "Online Electronics",
        "mcc": "5732",
        "country": "US",
        "card_present": False,
        "status": "approved",
        "occurred_at": datetime.now(UTC).isoformat(),
    }
    body.update(changes)
    return body


def declined(customer: dict, minutes_ago: int) -> dict[str, Any]:
    at = (datetime.now(UTC) - timedelta(minutes=minutes_ago)).isoformat()
    return transaction(customer, amount="40.00", card_present=True, status="declined",
                       occurred_at=at)  # fmt: skip


async def publish(nc: NatsClient, *bodies: dict[str, Any] | bytes) -> None:
    """Publish as docs/feeds.md asks the FI's core to: the transaction ID as Nats-Msg-Id."""
    js = nc.jetstream()
    for body in bodies:
        if isinstance(body, bytes):
            await js.publish(SUBJECT, body)
        else:
            headers = {"Nats-Msg-Id": body["transaction_id"]}
            await js.publish(SUBJECT, json.dumps(body).encode(), headers=headers)


async def outbox(stack: RunningStack, phone: str) -> list[dict]:
    async with httpx.AsyncClient(timeout=5) as http:
        r = await http.get(f"{stack.sandbox}/__sandbox/sms/outbox", params={"to": phone})
    r.raise_for_status()
    return list(r.json())


async def one_sms(stack: RunningStack, customer: dict, within: float = 30) -> str:
    [sms] = await eventually(lambda: outbox(stack, customer["phone"]), lambda m: len(m) == 1,
                             within=within)  # fmt: skip
    return str(sms["body"])


async def drained(nc: NatsClient, within: float = 30) -> None:
    """Nothing left for the consumers (the legacy subject's and the partitions') to deliver
    or to be acknowledged."""
    js = nc.jetstream()

    async def counts() -> tuple[int, int]:
        infos = await js.consumers_info(STREAM)
        assert any(i.name == CONSUMER for i in infos)
        return sum(i.num_pending or 0 for i in infos), sum(i.num_ack_pending or 0 for i in infos)

    await eventually(counts, lambda c: c == (0, 0), within=within)


def consumer_pid(stack: RunningStack) -> int:
    parts = json.loads((stack.state_dir / "status.json").read_text())["parts"]
    return int(next(p["pid"] for p in parts if p["name"] == "feed-1"))


async def restarted(stack: RunningStack, old_pid: int) -> None:
    """Wait until `fiflow up` runs a new feed-1 and that one has bound the consumer."""

    async def pid() -> int:
        return consumer_pid(stack)

    await eventually(pid, lambda p: p != old_pid, within=30)


async def test_a_published_transaction_texts_its_fraud_alert(
    stack: RunningStack, pool: CustomerPool, nc: NatsClient
) -> None:
    customer = pool.take()
    await publish(nc, transaction(customer))
    text = await one_sms(stack, customer)
    assert f"on card ending {customer['cards'][0]['last4']}" in text
    assert "Online Electronics" in text


async def test_http_ingest_is_the_same_as_a_direct_publish(
    stack: RunningStack, pool: CustomerPool, nc: NatsClient
) -> None:
    direct, posted = pool.take(), pool.take()
    first = transaction(direct)
    await publish(nc, first)
    await one_sms(stack, direct)
    stored = (await nc.jetstream().stream_info(STREAM)).state.messages
    async with httpx.AsyncClient(timeout=15) as http:
        url = f"{stack.api}/v1/feeds/transactions"
        second = transaction(posted)
        bad = {**transaction(posted), "currency": "usd"}
        lines = [json.dumps(first), json.dumps(second), json.dumps(bad)]
        refused = await http.post(url, content="\n".join(lines), headers=NDJSON)
        assert refused.status_code == 422, refused.text
        assert refused.json()["code"] == "invalid_transaction"
        assert refused.json()["details"] == [
            {"line": 3, "problem": "currency: String should match pattern '^[A-Z]{3}$'"}
        ]
        assert (await nc.jetstream().stream_info(STREAM)).state.messages == stored

        r = await http.post(url, content="\n".join(lines[:2]) + "\n", headers=NDJSON)
        assert r.status_code == 202, r.text
        # The transaction already published directly is stored once: one alert, one text.
        assert (r.json()["accepted"], r.json()["duplicates"]) == (2, 1)
        text = await one_sms(stack, posted)
        assert f"on card ending {posted['cards'][0]['last4']}" in text
        # The alert is the one a direct publish makes: keyed by the transaction ID.
        key = Settings().address_hash_key.get_secret_value()
        alert = await http.get(
            f"{stack.api}/v1/alerts/{alert_id_for(key, second['transaction_id'])}",
            headers=SYSTEM_KEY,
        )
        assert alert.status_code == 200, alert.text
        assert alert.json()["status"]["customer_id"] == posted["customer_id"]
    await drained(nc)
    assert len(await outbox(stack, direct["phone"])) == 1


async def test_a_poison_message_is_dead_lettered_and_the_stream_flows_on(
    stack: RunningStack, pool: CustomerPool, nc: NatsClient
) -> None:
    customer = pool.take()
    poison = b'{"transaction_id": "tx-poison", "amount": "lots"}'
    await publish(nc, poison, transaction(customer))
    await one_sms(stack, customer)
    js = nc.jetstream()
    dead = await js.stream_info(DEAD_LETTERS)
    stored = await js.get_msg(DEAD_LETTERS, seq=dead.state.last_seq)
    assert stored.data == poison
    assert stored.headers is not None
    reason = stored.headers[REASON_HEADER]
    assert reason.startswith("invalid transaction: ") and "customer_id: Field required" in reason


async def test_a_killed_consumer_loses_no_alert_starts_none_twice_and_keeps_its_windows(
    stack: RunningStack, pool: CustomerPool, nc: NatsClient
) -> None:
    js = nc.jetstream()
    decliner = pool.take()
    await publish(nc, declined(decliner, 3), declined(decliner, 2))
    await drained(nc)
    assert await outbox(stack, decliner["phone"]) == []  # two declines are not three

    customers = [pool.take() for _ in range(12)]
    pid = consumer_pid(stack)
    # Frozen, the consumer still holds its pull request: the batch is delivered to it.
    os.kill(pid, signal.SIGSTOP)
    await publish(nc, *(transaction(c) for c in customers))
    os.kill(pid, signal.SIGCONT)

    async def unacked() -> int:
        return (await js.consumer_info(STREAM, CONSUMER)).num_ack_pending or 0

    # Killed once part of the batch is done: some alerts started, the rest not acknowledged.
    at_kill = await eventually(unacked, lambda n: 0 < n < len(customers), within=20)
    os.kill(pid, signal.SIGKILL)
    await restarted(stack, pid)
    assert "feed-1 exited with code -9; restarting" in stack.output()

    # The restarted consumer still counts the two declines from before the kill.
    await publish(nc, declined(decliner, 0))
    text = await one_sms(stack, decliner, within=40)
    assert f"on card ending {decliner['cards'][0]['last4']}" in text
    for customer in customers:
        await one_sms(stack, customer, within=40)
    await drained(nc)
    await asyncio.sleep(1.0)  # room for a duplicate text to show up
    texts = [len(await outbox(stack, c["phone"])) for c in [*customers, decliner]]
    assert texts == [1] * (len(customers) + 1), f"{at_kill} unacknowledged at the kill"


async def test_the_sandbox_generator_streams_through_to_one_alert_per_alerting_transaction(
    stack: RunningStack, pool: CustomerPool, nc: NatsClient
) -> None:
    """The sandbox publishes like the FI's core; each transaction it says should alert does."""
    customers = [pool.take(), pool.take()]
    body = {
        "rate": 40,
        "seconds": 1,
        "seed": 21,
        "alert_share": 0.1,
        "decline_share": 0,
        "customers": [c["customer_id"] for c in customers],
    }
    async with httpx.AsyncClient(timeout=15) as http:
        started = await http.post(f"{stack.sandbox}/__sandbox/feeds/stream", json=body)
        assert started.status_code == 202, started.text

        async def progress() -> dict[str, Any]:
            r = await http.get(f"{stack.sandbox}/__sandbox/feeds/stream/{started.json()['run_id']}")
            return dict(r.json())

        run = await eventually(progress, lambda r: r["state"] != "running", within=30)
        assert (run["state"], run["published"], run["failed"]) == ("done", 40, 0), run
        alerting = run["alerting"]
        assert alerting and {a["customer_id"] for a in alerting} <= set(body["customers"])
        await drained(nc)
        key = Settings().address_hash_key.get_secret_value()
        for item in alerting:
            alert_id = alert_id_for(key, item["transaction_id"])

            async def status(alert_id: str = alert_id) -> int:
                r = await http.get(f"{stack.api}/v1/alerts/{alert_id}", headers=SYSTEM_KEY)
                return r.status_code

            assert await eventually(status, lambda code: code == 200, within=30) == 200

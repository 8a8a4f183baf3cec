"""The stream consumer on a real nats-server and a real Temporal test server: what each message
starts, dead letters, windows across restarts and redeliveries, two consumers on one card.

The consumer runs in-process (the e2e tests run `fiflow feed` itself); its starts are observed
on Temporal, its window state in the KV bucket.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import nats.errors
import pytest
from nats.js import JetStreamContext
from sqlalchemy.engine import Engine
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment

from fiflow.domain.alerts import AlertRequest
from fiflow.domain.feeds.preferences import AlertPreferences, AmountOver
from fiflow.domain.feeds.windows import CustomerWindows, WindowState
from fiflow.domain.keys import alert_id_for, alert_workflow_id, notice_id_for, notice_workflow_id
from fiflow.integrations.alert_starts import start_fraud_alert
from fiflow.integrations.database import create_db_engine, upgrade_database
from fiflow.integrations.nats_stream import (
    REASON_HEADER,
    WindowStore,
    connect_nats,
    ensure_streams,
    parse_transaction,
    publish_transactions,
    pull_subscriptions,
    window_bucket,
)
from fiflow.integrations.preferences_store import PreferenceStore
from fiflow.integrations.rule_versions import RuleVersionStore
from fiflow.integrations.rules_store import RuleStore
from fiflow.integrations.settings import Settings
from fiflow.workers import feed_consumer
from fiflow.workers.feed_consumer import FeedConsumer
from tests.e2e.waiting import eventually
from tests.nats_server import nats_server

RULES = Path(__file__).resolve().parents[2] / "fiflow" / "rules"
CONDITIONS = """
name: conditions
version: consumer-test
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
T0 = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)


def txn(transaction_id: str, customer: str = "cust-1", **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "transaction_id": transaction_id,
        "customer_id": customer,
        "card_last4": "4242",
        "amount": "25.00",
        "currency": "USD",
        "merchant": "Corner Shop",
        "mcc": "5411",
        "country": "US",
        "card_present": True,
        "status": "approved",
        "occurred_at": T0.isoformat(),
    }
    body.update(changes)
    return body


def decline(transaction_id: str, minute: int, customer: str = "cust-d") -> dict[str, Any]:
    at = (T0 + timedelta(minutes=minute)).isoformat()
    return txn(transaction_id, customer, status="declined", occurred_at=at)


@pytest.fixture(scope="module")
def nats_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with nats_server(tmp_path_factory.mktemp("nats")) as url:
        yield url


@pytest.fixture
def settings(nats_url: str, tmp_path: Path) -> Settings:
    rules = tmp_path / "rules"
    shutil.copytree(RULES, rules)
    (rules / "conditions.yaml").write_text(CONDITIONS)
    tag = tmp_path.name.replace("-", "_")[-24:].upper()
    db = f"sqlite:///{tmp_path / 'fiflow.db'}"
    upgrade_database(db)
    return Settings(
        nats_url=nats_url,
        database_url=db,
        rules_dir=rules,
        feed_stream=f"TX_{tag}",
        feed_subjects=f"tx.{tag}.>",
        feed_subject=f"tx.{tag}.card",
        feed_dead_letter_stream=f"DL_{tag}",
        feed_dead_letter_subject=f"dl.{tag}",
        feed_consumer=f"c_{tag}",
        feed_window_bucket=f"w_{tag}",
        feed_ack_wait_seconds=2.0,
    )


@pytest.fixture
def engine(settings: Settings) -> Iterator[Engine]:
    eng = create_db_engine(settings.database_url)
    yield eng
    eng.dispose()


@pytest.fixture
def client(time_skipping_env: WorkflowEnvironment) -> Client:
    return time_skipping_env.client


@pytest.fixture(autouse=True)
def quick_stop(monkeypatch: pytest.MonkeyPatch) -> None:
    # An idle consumer notices a stop within one fetch wait: short here, so tests stop fast.
    monkeypatch.setattr(feed_consumer, "FETCH_WAIT_S", 0.3)


@pytest.fixture
async def js(settings: Settings) -> AsyncIterator[JetStreamContext]:
    nc = await connect_nats(settings, "test-publisher")
    context = nc.jetstream()
    await ensure_streams(context, settings)
    yield context
    await nc.close()


async def publish(
    js: JetStreamContext, settings: Settings, *bodies: dict[str, Any] | bytes
) -> None:
    """Publish as the FI's core would: one message each, in order (no dedup ID)."""
    for body in bodies:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        await js.publish(settings.feed_subject, data, stream=settings.feed_stream)


@asynccontextmanager
async def consumer(
    settings: Settings,
    client: Client,
    engine: Engine,
    store: type[WindowStore] = WindowStore,
    **kw: Any,
) -> AsyncIterator[FeedConsumer]:
    """A consumer like `fiflow feed`'s (its own NATS connection), running until the block ends."""
    nc = await connect_nats(settings, "test-consumer")
    js = nc.jetstream()
    await ensure_streams(js, settings)
    windows = store(
        await window_bucket(js, settings),
        settings.address_hash_key.get_secret_value(),
        cache_size=settings.feed_window_cache_size,
    )
    subs = await pull_subscriptions(js, settings)
    rules = RuleStore(settings.rules_dir, RuleVersionStore(engine))
    running = FeedConsumer(settings, client, js, windows, rules, PreferenceStore(engine), **kw)
    stop = asyncio.Event()
    task = asyncio.create_task(running.run(subs, stop))
    try:
        yield running
    finally:
        stop.set()
        await task
        await nc.close()


async def drained(js: JetStreamContext, settings: Settings, within: float = 20.0) -> None:
    """Wait until the durable consumers (partitions and legacy) have nothing left to deliver
    or to be acknowledged."""

    async def info() -> tuple[int, int]:
        infos = await js.consumers_info(settings.feed_stream)
        return (
            sum(i.num_pending or 0 for i in infos),
            sum(i.num_ack_pending or 0 for i in infos),
        )

    await eventually(info, lambda counts: counts == (0, 0), within=within)


async def exists(client: Client, workflow_id: str) -> bool:
    try:
        await client.get_workflow_handle(workflow_id).describe()
    except RPCError as exc:
        if exc.status is RPCStatusCode.NOT_FOUND:
            return False
        raise
    return True


def key(settings: Settings) -> str:
    return settings.address_hash_key.get_secret_value()


async def stored(js: JetStreamContext, settings: Settings, customer_key: str) -> CustomerWindows:
    """The customer's window record as the bucket holds it (a fresh store: no kept copy)."""
    windows = WindowStore(await window_bucket(js, settings), key(settings))
    record, revision = await windows.load(customer_key, card=timedelta(0), customer=timedelta(0))
    assert revision > 0
    return record


async def alerted(client: Client, settings: Settings, transaction_id: str) -> bool:
    return await exists(client, alert_workflow_id(alert_id_for(key(settings), transaction_id)))


async def noticed(client: Client, settings: Settings, transaction_id: str) -> bool:
    return await exists(client, notice_workflow_id(notice_id_for(key(settings), transaction_id)))


async def test_each_message_starts_what_it_meets_once_and_poison_is_set_aside(
    js: JetStreamContext, settings: Settings, client: Client, engine: Engine
) -> None:
    PreferenceStore(engine).put(
        "cust-pref",
        AlertPreferences(preferences=[AmountOver(amount=Decimal(100))]),
        expected_version=0,
        at=T0,
    )
    large_cnp = txn("tx-cnp", amount="6000.00", card_present=False)
    await publish(
        js,
        settings,
        large_cnp,
        b"{this is not json",
        json.dumps(txn("tx-bad", card_last4="42")).encode(),
        txn("tx-small"),
        txn("tx-pref", "cust-pref", amount="150.00"),
        large_cnp,  # the same transaction again (a core that retried its publish)
        txn("tx-after-poison", "cust-2", amount="9000.00", card_present=False),
    )
    async with consumer(settings, client, engine) as running:
        await drained(js, settings)
    assert await alerted(client, settings, "tx-cnp")
    assert await alerted(client, settings, "tx-after-poison")
    assert await noticed(client, settings, "tx-pref")  # the customer's own preference
    assert not await alerted(client, settings, "tx-small")
    assert not await noticed(client, settings, "tx-small")  # the shipped defaults are off
    assert (running.processed, running.dead_letters) == (5, 2)

    dead = await js.stream_info(settings.feed_dead_letter_stream)
    assert dead.state.messages == 2
    first = await js.get_msg(settings.feed_dead_letter_stream, seq=1)
    second = await js.get_msg(settings.feed_dead_letter_stream, seq=2)
    assert first.data == b"{this is not json"
    assert first.headers and first.headers[REASON_HEADER].startswith("invalid transaction: ")
    assert second.headers and "card_last4" in second.headers[REASON_HEADER]
    assert '"42"' not in second.headers[REASON_HEADER]  # problems, never the values


async def test_windows_survive_a_restart_and_a_redelivery_counts_once(
    js: JetStreamContext, settings: Settings, client: Client, engine: Engine
) -> None:
    await publish(js, settings, decline("d-1", 0), decline("d-2", 1))
    async with consumer(settings, client, engine):
        await drained(js, settings)
    assert not await alerted(client, settings, "d-2")

    # Decline 2 comes again, then decline 3: only the third decline makes three.
    # The first try at decline 3 fails after its alert started (a crash before the ack):
    # it is delivered again, and neither its window nor its alert count twice.
    failed: list[str] = []

    async def start_then_fail(c: Client, s: Settings, req: AlertRequest, at: datetime) -> str:
        alert_id = await start_fraud_alert(c, s, req, at)
        if not failed:
            failed.append(req.source_event_id)
            raise RPCError("lost answer", RPCStatusCode.UNAVAILABLE, b"")
        return alert_id

    await publish(js, settings, decline("d-2", 1), decline("d-3", 2))
    async with consumer(settings, client, engine, start_fraud=start_then_fail) as restarted:
        await drained(js, settings)
    assert failed == ["d-3"] and restarted.retries == 1
    assert [await alerted(client, settings, t) for t in ("d-1", "d-2", "d-3")] == [
        False,
        False,
        True,
    ]
    # One record for the customer, each transaction in it once (the redelivered d-2 too).
    state = await stored(js, settings, "customer:cust-d")
    assert [t.transaction_id for t in state.recent] == ["d-1", "d-2", "d-3"]

    # A fourth decline, 20 minutes on: the first ones left its window (no alert).
    await publish(js, settings, decline("d-4", 22))
    async with consumer(settings, client, engine):
        await drained(js, settings)
    assert not await alerted(client, settings, "d-4")


async def test_an_upgrade_keeps_the_windows_an_older_consumer_kept_per_key(
    js: JetStreamContext, settings: Settings, client: Client, engine: Engine
) -> None:
    # An older consumer counted two declines of cust-m into its per-key entries (one for the
    # card, one for the customer); this one takes them over with the customer's first record.
    bucket = await window_bucket(js, settings)
    store = WindowStore(bucket, key(settings))
    old = tuple(
        parse_transaction(json.dumps(decline(f"m-{n}", n, "cust-m")).encode()) for n in (1, 2)
    )
    for window_key in ("card:cust-m/4242", "customer:cust-m"):
        state = WindowState(key=window_key, recent=old)
        await bucket.put(store.legacy_kv_key(window_key), state.model_dump_json().encode())
    # m-2 again (its ack was lost before the upgrade), then m-3: the third decline.
    await publish(js, settings, decline("m-2", 2, "cust-m"), decline("m-3", 3, "cust-m"))
    async with consumer(settings, client, engine):
        await drained(js, settings)
    assert [await alerted(client, settings, f"m-{n}") for n in (2, 3)] == [False, True]
    state = await stored(js, settings, "customer:cust-m")
    assert [t.transaction_id for t in state.recent] == ["m-1", "m-2", "m-3"]


async def test_two_consumers_on_one_card_lose_no_transaction(
    js: JetStreamContext, settings: Settings, client: Client, engine: Engine
) -> None:
    count = 40
    small = settings.model_copy(update={"feed_batch_size": 4})
    async with consumer(small, client, engine) as one, consumer(small, client, engine) as two:
        # Both pull before anything is published, so the stream shares the batches out:
        # published first, the consumer that started first could take all 40 before the
        # other asked (a full run saw 40 and 0).
        async def pulling() -> int:
            return max(i.num_waiting or 0 for i in await js.consumers_info(settings.feed_stream))

        await eventually(pulling, lambda waiting: waiting >= 2)
        await publish(js, settings, *(txn(f"s-{n:02d}", "cust-s") for n in range(count)))
        await drained(js, settings, within=30)
    # Windows are kept only while a condition needs them: the card's (15m) here.
    state = await stored(js, settings, "customer:cust-s")
    assert sorted(t.transaction_id for t in state.recent) == [f"s-{n:02d}" for n in range(count)]
    assert one.processed + two.processed == count
    assert one.processed > 0 and two.processed > 0


async def test_conditions_that_cannot_be_read_hold_the_batch(
    js: JetStreamContext, settings: Settings, client: Client, engine: Engine
) -> None:
    assert settings.rules_dir is not None
    conditions = settings.rules_dir / "conditions.yaml"
    conditions.write_text("name: conditions\nversion: [broken\n")
    await publish(js, settings, txn("tx-held", amount="7000.00", card_present=False))
    async with consumer(settings, client, engine) as running:
        await eventually(_value(lambda: running.retries), lambda n: n >= 1, within=10)
        assert not await alerted(client, settings, "tx-held")
        conditions.write_text(CONDITIONS)  # fixed: the held message goes through
        await drained(js, settings)
    assert await alerted(client, settings, "tx-held")


def _value(read: Callable[[], int]) -> Callable[[], Awaitable[int]]:
    async def get() -> int:
        return read()

    return get


async def test_two_consumers_judge_a_customers_transactions_in_publish_order(
    js: JetStreamContext, settings: Settings, client: Client, engine: Engine
) -> None:
    # Six customers' declines interleaved, published to their partitions; two consumer
    # processes (index 0 and 1 of 2) share four partitions in small batches.
    shared = settings.model_copy(
        update={"feed_partitions": 4, "feed_batch_size": 2, "feed_consumer_count": 2}
    )
    customers = [f"cust-o{n}" for n in range(6)]
    published = [decline(f"{c}-d{k}", k, customer=c) for k in (1, 2, 3) for c in customers]
    await publish_transactions(
        js,
        shared,
        [(t["transaction_id"], t["customer_id"], json.dumps(t).encode()) for t in published],
    )
    # The second decline of cust-o0 fails once on its way (its window unreadable): it goes
    # back to the stream, and the third must not overtake it, neither on this consumer nor
    # on the other (with one shared consumer, the other process took the third meanwhile).
    flaky = {"customer:cust-o0": 2}  # fails on the customer's second read

    class FlakyWindows(WindowStore):
        async def load(
            self, customer_key: str, card_keys: Sequence[str] = (), **horizons: timedelta
        ) -> tuple[CustomerWindows, int]:
            if customer_key in flaky:
                flaky[customer_key] -= 1
                if flaky[customer_key] == 0:
                    raise nats.errors.TimeoutError
            return await super().load(customer_key, card_keys, **horizons)

    first = shared.model_copy(update={"feed_consumer_index": 0})
    second = shared.model_copy(update={"feed_consumer_index": 1})
    async with (
        consumer(first, client, engine, FlakyWindows) as one,
        consumer(second, client, engine, FlakyWindows) as two,
    ):
        await drained(js, settings, within=30)
    assert flaky["customer:cust-o0"] <= 0 and one.retries + two.retries == 1
    assert one.processed > 0 and two.processed > 0  # both screened their partitions
    assert one.processed + two.processed == len(published)
    # "three declines within 15 minutes" fires on each customer's third decline, only there.
    for c in customers:
        assert [await alerted(client, settings, f"{c}-d{k}") for k in (1, 2, 3)] == [
            False,
            False,
            True,
        ], c


async def test_a_batch_writes_each_window_once_and_starts_its_alerts_together(
    js: JetStreamContext, settings: Settings, client: Client, engine: Engine
) -> None:
    # Five of one card's transactions (two of them alerting) in one fetched batch.
    bodies = [decline(f"w-{n}", n, customer="cust-w") for n in range(3)] + [
        txn(f"w-cnp-{n}", "cust-w", amount="8000.00", card_present=False) for n in range(2)
    ]
    await publish_transactions(
        js, settings, [(b["transaction_id"], "cust-w", json.dumps(b).encode()) for b in bodies]
    )
    saves: list[int] = []
    in_flight = [0, 0]  # now, most at once

    class CountingWindows(WindowStore):
        async def save(self, record: CustomerWindows, revision: int) -> int:
            saves.append(len(record.recent))
            return await super().save(record, revision)

    async def slow_start(c: Client, s: Settings, req: AlertRequest, at: datetime) -> str:
        in_flight[0] += 1
        in_flight[1] = max(in_flight)
        await asyncio.sleep(0.2)
        in_flight[0] -= 1
        return await start_fraud_alert(c, s, req, at)

    async with consumer(settings, client, engine, CountingWindows, start_fraud=slow_start):
        await drained(js, settings)
    # One compare-and-set for the customer's five (its card's and its own window), not ten.
    assert saves == [5]
    assert in_flight[1] == 3  # d-2's three-declines alert and the two large ones, together
    assert [await alerted(client, settings, b["transaction_id"]) for b in bodies] == [
        False,
        False,
        True,
        True,
        True,
    ]

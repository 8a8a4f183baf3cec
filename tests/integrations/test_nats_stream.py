"""The transaction stream's plumbing on a real nats-server: streams, acknowledged publishing,
dead letters with their reason, one window record per customer written only over the
revision read (and taken over from an older consumer's per-key entries)."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from nats.aio.client import Client as NatsClient
from nats.js import JetStreamContext

from fiflow.domain.feeds.transactions import Transaction
from fiflow.domain.feeds.windows import CustomerWindows, WindowState
from fiflow.integrations.nats_stream import (
    REASON_HEADER,
    SOURCE_SEQUENCE_HEADER,
    InvalidTransaction,
    StreamUnavailable,
    WindowConflict,
    WindowStore,
    connect_nats,
    connect_options,
    dead_letter,
    ensure_streams,
    legacy_windows_present,
    owned_partitions,
    parse_transaction,
    partition_of,
    publish_transactions,
    pull_subscription,
    transaction_subject,
    window_bucket,
)
from fiflow.integrations.settings import Settings
from fiflow.sandbox.routes.feeds import StreamRequest
from fiflow.sandbox.routes.feeds import partition_subject as core_subject
from tests.nats_server import nats_server
from tests.sandbox.servers import free_port

NOW = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)


def txn_json(transaction_id: str, **changes: object) -> bytes:
    body: dict[str, object] = {
        "transaction_id": transaction_id,
        "customer_id": "cust-0042",
        "card_last4": "4242",
        "amount": "12.50",
        "currency": "USD",
        "merchant": "Corner Shop",
        "mcc": "5411",
        "country": "US",
        "card_present": True,
        "status": "approved",
        "occurred_at": NOW.isoformat(),
    }
    body.update(changes)
    return json.dumps(body).encode()


@pytest.fixture(scope="module")
def nats_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with nats_server(tmp_path_factory.mktemp("nats")) as url:
        yield url


@pytest.fixture
def settings(nats_url: str, tmp_path: Path) -> Settings:
    # Stream, consumer and bucket names of their own: tests share the server.
    tag = tmp_path.name.replace("-", "_")[-24:].upper()
    return Settings(
        nats_url=nats_url,
        feed_stream=f"TX_{tag}",
        feed_subjects=f"tx.{tag}.>",
        feed_subject=f"tx.{tag}.card",
        feed_dead_letter_stream=f"DL_{tag}",
        feed_dead_letter_subject=f"dl.{tag}",
        feed_consumer=f"c_{tag}",
        feed_window_bucket=f"w_{tag}",
        feed_ack_wait_seconds=1.0,
    )


@pytest.fixture
async def js(settings: Settings) -> AsyncIterator[JetStreamContext]:
    nc: NatsClient = await connect_nats(settings, "test")
    try:
        context = nc.jetstream()
        await ensure_streams(context, settings)
        yield context
    finally:
        await nc.close()


async def test_a_batch_is_acknowledged_and_a_repeated_id_is_stored_once(
    js: JetStreamContext, settings: Settings
) -> None:
    await ensure_streams(js, settings)  # a second call keeps what exists

    def batch(*ids: str) -> list[tuple[str, str, bytes]]:
        return [(i, "cust-0042", txn_json(i)) for i in ids]

    first = await publish_transactions(js, settings, batch("tx-1", "tx-2"))
    assert (first.count, first.duplicates) == (2, 0)
    assert first.last_sequence == first.first_sequence + 1
    # The client retries the whole batch after a lost answer: nothing is stored twice.
    again = await publish_transactions(js, settings, batch("tx-1", "tx-3"))
    assert (again.count, again.duplicates) == (2, 1)
    info = await js.stream_info(settings.feed_stream)
    assert info.state.messages == 3
    assert info.config.storage == "file"
    # On the customer's partition subject, which names a number, not the customer.
    stored = await js.get_msg(settings.feed_stream, seq=first.first_sequence)
    partition = partition_of("cust-0042", settings.feed_partitions)
    assert stored.subject == f"{settings.feed_subject}.{partition}"
    assert "cust" not in (stored.subject or "")


def test_partitions_are_a_documented_hash_and_split_between_processes() -> None:
    # The FI's core computes the same number (docs: first 4 bytes of SHA-256, big-endian).
    digest = hashlib.sha256(b"cust-0042").digest()
    assert partition_of("cust-0042", 32) == int.from_bytes(digest[:4], "big") % 32
    assert {partition_of(f"cust-{n:04d}", 32) for n in range(400)} == set(range(32))
    settings = Settings(feed_partitions=8, feed_consumer_count=3, feed_consumer_index=1)
    assert owned_partitions(settings) == [1, 4, 7]
    shares = [
        owned_partitions(settings.model_copy(update={"feed_consumer_index": i})) for i in range(3)
    ]
    assert sorted(p for share in shares for p in share) == list(range(8))  # each once
    with pytest.raises(ValueError, match="index 3"):
        owned_partitions(settings.model_copy(update={"feed_consumer_index": 3}))


H = {"card": timedelta(minutes=15), "customer": timedelta(hours=1)}
CUSTOMER = "customer:cust-0042"


def record(*ids: str) -> CustomerWindows:
    return CustomerWindows(key=CUSTOMER, recent=tuple(parse_transaction(txn_json(i)) for i in ids))


async def test_a_kept_window_record_never_overwrites_another_writers(
    js: JetStreamContext, settings: Settings
) -> None:
    bucket = await window_bucket(js, settings)
    mine = WindowStore(bucket, "test-hash-key", cache_size=10)
    other = WindowStore(bucket, "test-hash-key")
    one = record("tx-1")
    revision = await mine.save(one, 0)
    assert await mine.load(CUSTOMER, **H) == (one, revision)  # kept: no read
    two = record("tx-1", "tx-2")
    await other.save(two, revision)  # another process came in between
    # The kept record is stale: writing over it fails, and the next load reads what is stored.
    with pytest.raises(WindowConflict):
        await mine.save(CustomerWindows(key=CUSTOMER), revision)
    assert (await mine.load(CUSTOMER, **H))[0] == two


async def test_a_dead_letter_keeps_the_body_and_says_why(
    js: JetStreamContext, settings: Settings
) -> None:
    await js.publish(settings.feed_subject, b"{not json")
    sub = await pull_subscription(js, settings)
    [msg] = await sub.fetch(1, timeout=5)
    await dead_letter(js, settings, msg, "invalid transaction: message: Invalid JSON\r\nx")
    await msg.ack()

    stored = await js.get_msg(settings.feed_dead_letter_stream, seq=1)
    assert stored.data == b"{not json"
    assert stored.headers is not None
    assert stored.headers[REASON_HEADER] == "invalid transaction: message: Invalid JSON  x"
    assert stored.headers[SOURCE_SEQUENCE_HEADER] == str(msg.metadata.sequence.stream)


async def test_a_customers_windows_are_one_record_written_only_over_the_revision_read(
    js: JetStreamContext, settings: Settings
) -> None:
    bucket = await window_bucket(js, settings)
    store = WindowStore(bucket, "test-hash-key")
    empty, revision = await store.load(CUSTOMER, ["card:cust-0042/4242"], **H)
    assert (empty, revision) == (CustomerWindows(key=CUSTOMER), 0)

    one = record("tx-1")
    written = await store.save(one, revision)
    # A second writer that read the same (empty) record loses and must read again.
    with pytest.raises(WindowConflict):
        await store.save(CustomerWindows(key=CUSTOMER), revision)
    loaded, now_at = await store.load(CUSTOMER, **H)
    assert (loaded, now_at) == (one, written)
    # One entry for the customer, its cards' windows included; its key names neither the
    # customer nor a card.
    keys = await bucket.keys()
    assert keys == [store.kv_key(CUSTOMER)]
    # Records only: a consumer reads no per-key entry of older consumers for new customers.
    assert not await legacy_windows_present(js, settings)
    assert keys[0].startswith("windows.") and "cust-0042" not in keys[0] and "4242" not in keys[0]


async def test_the_first_record_of_a_customer_takes_over_an_older_consumers_entries(
    js: JetStreamContext, settings: Settings
) -> None:
    # What a consumer before one-record-per-customer left: a state per card and customer.
    bucket = await window_bucket(js, settings)
    card, other_card = "card:cust-0042/4242", "card:cust-0042/1111"
    t1, t2 = parse_transaction(txn_json("tx-1")), parse_transaction(txn_json("tx-2"))
    t3 = parse_transaction(txn_json("tx-3", card_last4="1111"))
    store = WindowStore(bucket, "test-hash-key")
    for key, recent in ((card, (t1, t2)), (other_card, (t3,)), (CUSTOMER, (t1, t2, t3))):
        state = WindowState(key=key, recent=recent)
        await bucket.put(store.legacy_kv_key(key), state.model_dump_json().encode())
    assert store.legacy_kv_key(card).startswith("card.")
    assert await legacy_windows_present(js, settings)

    merged, revision = await store.load(CUSTOMER, [card], **H)
    assert revision == 0  # no record yet: the first save creates it
    assert [t.transaction_id for t in merged.recent] == ["tx-1", "tx-2", "tx-3"]
    await store.save(merged, revision)
    # Once the record exists, the old entries are not read again.
    await bucket.put(
        store.legacy_kv_key(CUSTOMER), WindowState(key=CUSTOMER).model_dump_json().encode()
    )
    assert (await WindowStore(bucket, "test-hash-key").load(CUSTOMER, **H))[0] == merged
    # Past the migration period a store reads only records.
    other = "customer:cust-0043"
    t4 = parse_transaction(txn_json("tx-4", customer_id="cust-0043"))
    await bucket.put(
        store.legacy_kv_key(other), WindowState(key=other, recent=(t4,)).model_dump_json().encode()
    )
    assert (await store.load(other, **H))[0].recent == (t4,)
    late = WindowStore(bucket, "test-hash-key", legacy_for=timedelta(0))
    assert (await late.load(other, **H))[0].recent == ()


def test_a_bad_transaction_is_described_without_its_values() -> None:
    with pytest.raises(InvalidTransaction) as bad:
        parse_transaction(txn_json("tx-9", card_last4="4111 1111", amount="1.123456"))
    text = str(bad.value)
    assert "card_last4" in text and "amount" in text
    assert "4111" not in text and "1.123456" not in text
    with pytest.raises(InvalidTransaction, match="transaction_id"):
        parse_transaction(txn_json("tx 9/with spaces"))
    assert isinstance(parse_transaction(txn_json("tx-ok")), Transaction)


async def test_no_server_is_a_quick_stream_unavailable() -> None:
    settings = Settings(nats_url=f"nats://127.0.0.1:{free_port()}")
    started = time.monotonic()
    with pytest.raises(StreamUnavailable):
        await connect_nats(settings, "test", within_s=1.0)
    assert time.monotonic() - started < timedelta(seconds=5).total_seconds()


def test_credentials_and_tls_come_from_the_settings(tmp_path: Path) -> None:
    creds = tmp_path / "user.creds"
    plain = connect_options(Settings(nats_url="nats://a:4222, nats://b:4222"), "x")
    assert plain["servers"] == ["nats://a:4222", "nats://b:4222"]
    assert not {"user", "password", "token", "user_credentials", "tls"} & set(plain)
    keyed = connect_options(
        Settings(nats_user="fiflow", nats_password="pw", nats_token="tok",  # noqa: S106
                 nats_creds_file=creds),
        "x",
    )  # fmt: skip
    assert (keyed["user"], keyed["password"], keyed["token"]) == ("fiflow", "pw", "tok")
    assert keyed["user_credentials"] == str(creds)


def test_the_sandbox_generator_publishes_to_the_partition_fiflow_reads() -> None:
    # The sandbox stands for the FI's core and imports no fiflow code: its own copy of the
    # documented rule must agree with fiflow's, or generated streams would lose their order.
    settings = Settings()
    assert settings.feed_partitions == StreamRequest().partitions  # the same default
    for n in range(500):
        customer = f"cust-{n:04d}"
        assert core_subject(settings.feed_subject, customer, 32) == transaction_subject(
            settings, customer
        )
    assert core_subject(settings.feed_subject, "cust-0001", 0) == settings.feed_subject

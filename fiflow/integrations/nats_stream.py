"""The transaction stream on NATS JetStream: connection, streams, publishing, dead letters,
and the window state the consumer keeps beside the stream.

One JSON transaction (fiflow.domain.feeds.transactions.Transaction) per message on
`<FIFLOW_FEED_SUBJECT>.<partition>`, the partition a stable hash of the customer id
(`partition_of`); the plain `FIFLOW_FEED_SUBJECT` is still read (legacy, unordered across
consumer processes). The stream `FIFLOW_FEED_STREAM` holds every subject under
`FIFLOW_FEED_SUBJECTS` on file storage. A message the consumer cannot read goes to the
dead-letter subject (its own stream) with the reason in a header, so nothing is lost and
nothing blocks the stream. docs/feeds.md "The stream" is the reference for the FI's core.

Nothing here logs a message body: transactions carry personal data. Reasons quote validation
problems (field and problem), never the values.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import re
import ssl
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import nats.errors
import nats.js.errors
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DeliverPolicy,
    KeyValueConfig,
    PubAck,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)
from nats.js.kv import KeyValue
from pydantic import ValidationError

from fiflow.domain.alerts import SAFE_ID
from fiflow.domain.feeds.transactions import Transaction
from fiflow.domain.feeds.windows import CustomerWindows, WindowState, merged_record
from fiflow.domain.keys import keyed_hash
from fiflow.integrations.settings import Settings

log = logging.getLogger("fiflow.feed")

# Headers of a dead letter: why, and where the message came from.
REASON_HEADER = "Fiflow-Dead-Letter-Reason"
SOURCE_SUBJECT_HEADER = "Fiflow-Source-Subject"
SOURCE_SEQUENCE_HEADER = "Fiflow-Source-Sequence"
DELIVERIES_HEADER = "Fiflow-Deliveries"
# JetStream drops a second message with the same ID within the duplicate window: a client
# that retries a batch after a lost answer does not store its transactions twice.
MSG_ID_HEADER = "Nats-Msg-Id"

STREAM_MAX_AGE = timedelta(days=7)
DUPLICATE_WINDOW = timedelta(minutes=10)
DEAD_LETTER_MAX_AGE = timedelta(days=30)
# Window state outlives the longest window (24h) by far; an idle key's state then expires.
WINDOW_TTL = timedelta(days=7)
# How long after start a consumer still reads the per-key entries of older consumers for a
# customer it finds no record of (WindowStore): the longest window the language allows.
LEGACY_WINDOWS_FOR = timedelta(hours=24)
PUBLISH_TIMEOUT_S = 10.0
REASON_MAX = 500


class StreamUnavailable(Exception):
    """The NATS server or the stream cannot be reached, or did not acknowledge in time."""


class InvalidTransaction(ValueError):
    """A message or line that is not a valid transaction; the message says what (no values)."""


class WindowConflict(Exception):
    """Another writer changed a window state since it was read: read again and redo."""


# --- reading a transaction ---------------------------------------------------------------


def describe_invalid(exc: ValidationError) -> str:
    """The problems of a validation error by field, never quoting the input."""
    problems = []
    for error in exc.errors(include_input=False, include_url=False):
        where = ".".join(str(p) for p in error.get("loc", ())) or "message"
        problems.append(f"{where}: {error.get('msg', 'invalid')}")
    return "; ".join(problems)


def parse_transaction(data: bytes) -> Transaction:
    """A transaction from one message body (or NDJSON line); InvalidTransaction if it is not."""
    try:
        txn = Transaction.model_validate_json(data)
    except ValidationError as exc:
        raise InvalidTransaction(describe_invalid(exc)) from None
    # The transaction ID becomes the alert's source_event_id (and the customer ID is the
    # alert's): both must be IDs an alert accepts, so a matching transaction can start one.
    for name in ("transaction_id", "customer_id"):
        if not re.match(SAFE_ID, getattr(txn, name)):
            raise InvalidTransaction(
                f"{name}: letters, digits and . _ : - only, starting with a letter or digit"
            )
    return txn


def safe_header(text: str) -> str:
    """A header value: one line of printable ASCII, bounded."""
    flat = "".join(ch if " " <= ch <= "~" else " " for ch in text)
    return flat[:REASON_MAX]


# --- connecting -----------------------------------------------------------------------------


def servers(settings: Settings) -> list[str]:
    """The server URLs (FIFLOW_NATS_URL, comma-separated for a cluster)."""
    return [u.strip() for u in settings.nats_url.split(",") if u.strip()]


def tls_context(settings: Settings) -> ssl.SSLContext | None:
    """TLS from the CA file (and the client certificate for mutual TLS); None: per the URL."""
    if settings.nats_tls_ca_file is None and settings.nats_tls_cert_file is None:
        return None
    context = ssl.create_default_context(
        cafile=str(settings.nats_tls_ca_file) if settings.nats_tls_ca_file else None
    )
    if settings.nats_tls_cert_file is not None:
        context.load_cert_chain(
            str(settings.nats_tls_cert_file),
            str(settings.nats_tls_key_file) if settings.nats_tls_key_file else None,
        )
    return context


def connect_options(settings: Settings, name: str) -> dict[str, Any]:
    """nats-py connect options from the settings (credentials and TLS included)."""
    options: dict[str, Any] = {
        "servers": servers(settings),
        "name": name,
        "connect_timeout": 3,
        # A long-lived process keeps reconnecting (a cluster member restarts, a network blip);
        # callers bound the first connect themselves.
        "max_reconnect_attempts": -1,
        "reconnect_time_wait": 1,
        "error_cb": _on_error,
        "disconnected_cb": _on_disconnected,
        "reconnected_cb": _on_reconnected,
    }
    if settings.nats_user:
        options["user"] = settings.nats_user
        if settings.nats_password is not None:
            options["password"] = settings.nats_password.get_secret_value()
    if settings.nats_token is not None:
        options["token"] = settings.nats_token.get_secret_value()
    if settings.nats_creds_file is not None:
        options["user_credentials"] = str(settings.nats_creds_file)
    tls = tls_context(settings)
    if tls is not None:
        options["tls"] = tls
    return options


async def _on_error(exc: Exception) -> None:
    # The type only: a server's error text can echo a subject, and a traceback per retry
    # floods the log while a server is down.
    log.warning("nats: %s", type(exc).__name__)


async def _on_disconnected() -> None:
    # Also on a deliberate close; a lasting outage shows as errors from the reconnect attempts.
    log.info("nats: disconnected")


async def _on_reconnected() -> None:
    log.info("nats: reconnected")


async def connect_nats(settings: Settings, name: str, within_s: float = 10.0) -> NatsClient:
    """A connection to the NATS servers; StreamUnavailable if none answers within `within_s`."""
    client = NatsClient()
    try:
        await asyncio.wait_for(client.connect(**connect_options(settings, name)), within_s)
    except (TimeoutError, OSError, nats.errors.Error) as exc:
        await _close_quietly(client)
        raise StreamUnavailable(f"cannot connect to NATS: {type(exc).__name__}") from None
    return client


async def _close_quietly(client: NatsClient) -> None:
    # Closing a connection that never opened may fail in any way: nothing to do about it.
    with contextlib.suppress(Exception):
        await client.close()


# --- streams, consumer, window bucket -------------------------------------------------------


async def ensure_streams(js: JetStreamContext, settings: Settings) -> None:
    """Create the transaction and dead-letter streams where missing (existing ones are kept:
    an FI's operators may manage their own)."""
    wanted = (
        StreamConfig(
            name=settings.feed_stream,
            description="fiflow: card transactions to screen (one JSON transaction a message)",
            subjects=[s.strip() for s in settings.feed_subjects.split(",") if s.strip()],
            retention=RetentionPolicy.LIMITS,
            storage=StorageType.FILE,
            max_age=STREAM_MAX_AGE.total_seconds(),
            duplicate_window=DUPLICATE_WINDOW.total_seconds(),
        ),
        StreamConfig(
            name=settings.feed_dead_letter_stream,
            description="fiflow: transactions the feed consumer could not take, with the reason",
            subjects=[settings.feed_dead_letter_subject],
            retention=RetentionPolicy.LIMITS,
            storage=StorageType.FILE,
            max_age=DEAD_LETTER_MAX_AGE.total_seconds(),
        ),
    )
    for config in wanted:
        assert config.name is not None
        try:
            await js.stream_info(config.name)
        except nats.js.errors.NotFoundError:
            await js.add_stream(config)


# --- partitions: a customer's transactions on one subject, read by one process ------------


def partition_of(customer_id: str, partitions: int) -> int:
    """The customer's partition: the first 4 bytes of SHA-256(customer_id, UTF-8), big-endian,
    modulo the partition count. Unkeyed on purpose: the FI's core computes it too, and a
    number below the partition count says nothing about the customer."""
    digest = hashlib.sha256(customer_id.encode()).digest()
    return int.from_bytes(digest[:4], "big") % partitions


def partition_subject(settings: Settings, partition: int) -> str:
    """The subject of one partition: `<feed_subject>.<partition>`."""
    return f"{settings.feed_subject}.{partition}"


def transaction_subject(settings: Settings, customer_id: str) -> str:
    """Where a transaction of this customer is published."""
    return partition_subject(settings, partition_of(customer_id, settings.feed_partitions))


def owned_partitions(settings: Settings) -> list[int]:
    """The partitions consumer process `feed_consumer_index` of `feed_consumer_count` reads:
    p with p % count == index. Each process's share is its own, so a customer's transactions
    are judged by one process, in stream order."""
    index, count = settings.feed_consumer_index, settings.feed_consumer_count
    if not 0 <= index < count:
        raise ValueError(f"feed consumer index {index} is not below the consumer count {count}")
    return [p for p in range(settings.feed_partitions) if p % count == index]


def partition_consumer(settings: Settings, partition: int) -> str:
    """The durable consumer of one partition (stable whatever the process count)."""
    return f"{settings.feed_consumer}-p{partition}"


def _consumer_config(settings: Settings, name: str, subject: str, what: str) -> ConsumerConfig:
    return ConsumerConfig(
        name=name,
        durable_name=name,
        description=f"fiflow feed: screens transactions and starts alerts ({what})",
        deliver_policy=DeliverPolicy.ALL,
        ack_policy=AckPolicy.EXPLICIT,
        ack_wait=settings.feed_ack_wait_seconds,
        max_deliver=settings.feed_max_deliver,
        filter_subject=subject,
        # Room for every consumer process's batch in flight at once.
        max_ack_pending=max(1000, settings.feed_batch_size * 16),
    )


def consumer_config(settings: Settings) -> ConsumerConfig:
    """The durable pull consumer of the plain (legacy, unpartitioned) subject, which every
    `fiflow feed` process shares."""
    return _consumer_config(settings, settings.feed_consumer, settings.feed_subject, "legacy")


def partition_consumer_config(settings: Settings, partition: int) -> ConsumerConfig:
    """The durable pull consumer of one partition."""
    return _consumer_config(
        settings,
        partition_consumer(settings, partition),
        partition_subject(settings, partition),
        f"partition {partition}",
    )


async def pull_subscription(
    js: JetStreamContext, settings: Settings
) -> JetStreamContext.PullSubscription:
    """Create or update the legacy subject's durable consumer, and bind a pull subscription."""
    await js.add_consumer(settings.feed_stream, consumer_config(settings))
    return await js.pull_subscribe_bind(durable=settings.feed_consumer, stream=settings.feed_stream)


async def pull_subscriptions(
    js: JetStreamContext, settings: Settings
) -> list[JetStreamContext.PullSubscription]:
    """Pull subscriptions on this process's partitions, then on the legacy subject."""
    subs = []
    for partition in owned_partitions(settings):
        config = partition_consumer_config(settings, partition)
        assert config.durable_name is not None
        await js.add_consumer(settings.feed_stream, config)
        subs.append(
            await js.pull_subscribe_bind(durable=config.durable_name, stream=settings.feed_stream)
        )
    return [*subs, await pull_subscription(js, settings)]


async def window_bucket(js: JetStreamContext, settings: Settings) -> KeyValue:
    """The KV bucket holding the window states (created where missing)."""
    try:
        return await js.key_value(settings.feed_window_bucket)
    except nats.js.errors.BucketNotFoundError:
        return await js.create_key_value(
            KeyValueConfig(
                bucket=settings.feed_window_bucket,
                description="fiflow feed: recent transactions per card and customer",
                history=1,
                ttl=WINDOW_TTL.total_seconds(),
                storage=StorageType.FILE,
            )
        )


async def legacy_windows_present(js: JetStreamContext, settings: Settings) -> bool:
    """Whether the window bucket still holds an entry of the per-key layout consumers wrote
    before one record per customer (`card.<hash>`, `customer.<hash>`; they expire with the
    bucket's TTL). One lookup per kind, however many keys the bucket holds."""
    bucket = settings.feed_window_bucket
    for kind in ("card", "customer"):
        try:
            await js.get_msg(f"KV_{bucket}", seq=1, subject=f"$KV.{bucket}.{kind}.>", next=True)
        except nats.js.errors.NotFoundError:
            continue
        return True
    return False


# --- publishing -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Published:
    """What the stream acknowledged for a batch."""

    count: int
    duplicates: int
    first_sequence: int
    last_sequence: int


async def publish_transactions(
    js: JetStreamContext,
    settings: Settings,
    messages: Sequence[tuple[str, str, bytes]],
    within_s: float = PUBLISH_TIMEOUT_S,
) -> Published:
    """Publish (transaction ID, customer ID, body) triples, each to its customer's partition,
    and wait until the stream acknowledged every one.

    StreamUnavailable when any is not acknowledged in time: the caller retries the whole
    batch, and the stream drops what it already holds (same ID within the duplicate window).
    """
    futures: list[asyncio.Future[PubAck]] = []
    try:
        for transaction_id, customer_id, body in messages:
            futures.append(
                await js.publish_async(
                    transaction_subject(settings, customer_id),
                    body,
                    wait_stall=within_s,
                    stream=settings.feed_stream,
                    headers={MSG_ID_HEADER: transaction_id},
                )
            )
        acks = await asyncio.wait_for(asyncio.gather(*futures), within_s)
    except (TimeoutError, nats.errors.Error) as exc:
        for future in futures:
            future.cancel()
        raise StreamUnavailable(f"the stream did not acknowledge: {type(exc).__name__}") from None
    sequences = [a.seq for a in acks]
    return Published(
        count=len(acks),
        duplicates=sum(1 for a in acks if a.duplicate),
        first_sequence=min(sequences, default=0),
        last_sequence=max(sequences, default=0),
    )


async def dead_letter(js: JetStreamContext, settings: Settings, msg: Msg, reason: str) -> None:
    """Store the message on the dead-letter subject with why (acknowledged by its stream)."""
    headers = {
        REASON_HEADER: safe_header(reason),
        SOURCE_SUBJECT_HEADER: safe_header(msg.subject),
    }
    try:
        meta = msg.metadata
        headers[SOURCE_SEQUENCE_HEADER] = str(meta.sequence.stream)
        headers[DELIVERIES_HEADER] = str(meta.num_delivered)
    except (nats.errors.NotJSMessageError, ValueError):
        pass
    await js.publish(
        settings.feed_dead_letter_subject,
        msg.data,
        timeout=PUBLISH_TIMEOUT_S,
        stream=settings.feed_dead_letter_stream,
        headers=headers,
    )


# --- window state ---------------------------------------------------------------------------


class WindowStore:
    """One record of window state per customer in the KV bucket (`CustomerWindows`: its own
    window and its cards'), each written only over the revision it was read at: one read and
    one compare-and-set per customer and batch, not one per window key.

    Keys are keyed hashes of the customer's window key (`customer:<id>` would put a customer
    in a subject): `windows.<hash>`.

    The records this process last read or wrote are kept (up to `cache_size`, least recently
    used dropped): a process owns its partitions, so the next transaction of a customer
    usually finds its record here and skips a round trip. A kept record is only a guess of
    what is stored: it is written with its revision, so when another writer came in between
    the write fails (WindowConflict), the guess is dropped and the caller reads again.

    Migration from one entry per window key (`card.<hash>`, `customer.<hash>`, written by
    consumers before this layout): for `legacy_for` after this store is made, a customer
    without a record yet is read from the old entries of its customer key and of the cards
    the caller names, merged into its first record, so an upgrade neither forgets a window
    nor counts a transaction twice. Windows are at most 24h long, so after a day the old
    entries hold nothing a window still needs (they expire with the bucket's TTL). The
    consumer turns the fallback off (`legacy_for` 0) where the bucket holds no old entry
    (`legacy_windows_present`), so a fresh deployment pays no extra read; the fallback can go
    once no deployment older than this layout remains.
    """

    def __init__(
        self,
        kv: KeyValue,
        hash_key: str,
        cache_size: int = 0,
        legacy_for: timedelta = LEGACY_WINDOWS_FOR,
    ):
        self._kv = kv
        self._hash_key = hash_key
        self._cache_size = cache_size
        self._cache: OrderedDict[str, tuple[CustomerWindows, int]] = OrderedDict()
        self._legacy_until = time.monotonic() + legacy_for.total_seconds()

    def kv_key(self, customer_key: str) -> str:
        """The bucket key of a customer's record (a keyed hash of its window key)."""
        return f"windows.{keyed_hash(self._hash_key, 'window:' + customer_key)}"

    def legacy_kv_key(self, window_key: str) -> str:
        """Where consumers before this layout kept one window key's state."""
        kind = window_key.partition(":")[0]
        return f"{kind}.{keyed_hash(self._hash_key, 'window:' + window_key)}"

    async def load(
        self,
        customer_key: str,
        card_keys: Sequence[str] = (),
        *,
        card: timedelta,
        customer: timedelta,
    ) -> tuple[CustomerWindows, int]:
        """The customer's record and its revision (0: none stored yet; then, while migrating,
        what the old per-key entries of the customer and of `card_keys` hold, pruned with
        the horizons)."""
        kept = self._cache.get(customer_key)
        if kept is not None:
            self._cache.move_to_end(customer_key)
            return kept
        try:
            entry = await self._kv.get(self.kv_key(customer_key))
        except nats.js.errors.KeyNotFoundError:
            if time.monotonic() >= self._legacy_until:
                return CustomerWindows(key=customer_key), 0
            return await self._legacy(customer_key, card_keys, card, customer), 0
        assert entry.value is not None
        record = CustomerWindows.model_validate_json(entry.value)
        if record.key != customer_key:  # a hash collision would mix two customers' windows
            raise ValueError("window record stored under another key")
        revision = entry.revision or 0
        self._keep(record, revision)
        return record, revision

    async def _legacy(
        self, customer_key: str, card_keys: Sequence[str], card: timedelta, customer: timedelta
    ) -> CustomerWindows:
        keys = [customer_key, *card_keys]
        found = await asyncio.gather(
            *(self._kv.get(self.legacy_kv_key(k)) for k in keys), return_exceptions=True
        )
        states = []
        for key, entry in zip(keys, found, strict=True):
            if isinstance(entry, nats.js.errors.NotFoundError):  # none, or deleted
                continue
            if isinstance(entry, BaseException):
                raise entry
            if entry.value is None:
                continue
            state = WindowState.model_validate_json(entry.value)
            if state.key != key:
                raise ValueError("window state stored under another key")
            states.append(state.recent)
        return merged_record(customer_key, states, card=card, customer=customer)

    async def save(self, record: CustomerWindows, revision: int) -> int:
        """Write the record over `revision` (0: only if none exists); WindowConflict if changed."""
        try:
            written = await self._kv.update(
                self.kv_key(record.key), record.model_dump_json().encode(), last=revision
            )
        except nats.js.errors.KeyWrongLastSequenceError:
            self._cache.pop(record.key, None)
            raise WindowConflict("the window record changed since it was read") from None
        except BaseException:
            # Unknown whether it was written: the next load reads what is stored.
            self._cache.pop(record.key, None)
            raise
        self._keep(record, written)
        return written

    def _keep(self, record: CustomerWindows, revision: int) -> None:
        if self._cache_size <= 0:
            return
        self._cache[record.key] = (record, revision)
        self._cache.move_to_end(record.key)
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)

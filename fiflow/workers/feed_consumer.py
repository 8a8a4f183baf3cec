"""The stream consumer process (`fiflow feed`): screen each transaction, start its alerts,
then acknowledge.

Transactions arrive partitioned by customer (`<subject>.<partition>`, see
fiflow.integrations.nats_stream.partition_of). Each partition has a durable JetStream pull
consumer; process `index` of `count` reads the partitions p with p % count == index, one
batch at a time per partition, so one process judges a customer's transactions, in stream
order, while its partitions run concurrently. Every process also reads the shared durable
consumer of the plain (legacy) subject, with no order across processes. For each batch:

1. read each message as a Transaction; one that is not goes to the dead-letter subject with
   the reason and is acknowledged, so it never blocks the stream;
2. per customer, in stream order: read the customer's window record (its own window and its
   cards', one KV entry) once (or take what this process last wrote), evaluate the active FI
   conditions and the customer's own alert preferences (the FI's defaults for a customer who
   stored none) transaction by transaction, and write the record once if it changed, only
   over the revision read (compare-and-set): two consumers or a redelivery never count a
   transaction twice, and a restart forgets nothing;
3. `plan_alerts` and start what it says, keyed by the transaction id, so a redelivery starts
   nothing new; the batch's starts run concurrently (bounded by feed_start_concurrency);
4. acknowledge each message only after its own starts. A failure on the way (Temporal or NATS
   unavailable) sends it, and the customer's later messages of the batch, back after a
   backoff; the partition waits for them, so later transactions never overtake them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import nats.errors
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from pydantic import ValidationError
from temporalio.client import Client

from fiflow.domain.alerts import AlertRequest
from fiflow.domain.feeds.conditions import CompiledRules, ConditionRuleSet
from fiflow.domain.feeds.matches import (
    AlertPlan,
    Match,
    NoticeRequest,
    Origin,
    condition_match,
    plan_alerts,
)
from fiflow.domain.feeds.preferences import AlertPreferences, effective, preference_matches
from fiflow.domain.feeds.transactions import FeedSettings, Transaction
from fiflow.domain.feeds.windows import Windows, observe_customer, windows_for
from fiflow.domain.rules import RuleSetError
from fiflow.integrations import telemetry
from fiflow.integrations.alert_starts import start_notice, start_stream_fraud_alert
from fiflow.integrations.database import create_db_engine
from fiflow.integrations.nats_stream import (
    LEGACY_WINDOWS_FOR,
    InvalidTransaction,
    StreamUnavailable,
    WindowConflict,
    WindowStore,
    connect_nats,
    dead_letter,
    describe_invalid,
    ensure_streams,
    legacy_windows_present,
    owned_partitions,
    parse_transaction,
    pull_subscriptions,
    window_bucket,
)
from fiflow.integrations.preferences_store import PreferenceStore
from fiflow.integrations.rule_versions import RuleVersionStore
from fiflow.integrations.rules_store import RuleStore
from fiflow.integrations.settings import Settings
from fiflow.integrations.temporal import connect

log = logging.getLogger("fiflow.feed")

# How long one fetch waits for messages: also how soon a stop request is noticed when idle.
FETCH_WAIT_S = 2.0
# Reading and writing a window again after another writer changed it.
WINDOW_ATTEMPTS = 8
RETRY_FIRST_S = 0.5
RETRY_MAX_S = 30.0
# After sending messages back, a partition waits their backoff and this much more, so they
# are due (and delivered first) when it fetches again.
REDELIVERY_MARGIN_S = 0.25

StartFraudAlert = Callable[[Client, Settings, AlertRequest, datetime], Awaitable[str]]
StartNotice = Callable[[Client, Settings, NoticeRequest, datetime], Awaitable[str]]


@dataclass(frozen=True)
class Screening:
    """What one batch is screened against: the active conditions and its customers'
    preferences (read once per batch)."""

    rules: CompiledRules
    settings: FeedSettings
    preferences: dict[str, AlertPreferences]
    defaults: AlertPreferences

    def preferences_of(self, customer_id: str) -> AlertPreferences:
        """The customer's stored preferences, or the FI's defaults."""
        return self.preferences.get(customer_id, self.defaults)


def condition_matches(txn: Transaction, windows: Windows, rules: CompiledRules) -> list[Match]:
    """The FI conditions the transaction meets, as matches, in rule-file order."""
    return [condition_match(c) for c in rules.matches(txn, windows)]


def screen(txn: Transaction, windows: Windows, screening: Screening) -> list[Match]:
    """Every match of one transaction: the FI's conditions first, then the customer's own
    alert preferences; plan_alerts weighs them together."""
    prefs = screening.preferences_of(txn.customer_id)
    return condition_matches(txn, windows, screening.rules) + preference_matches(
        txn, prefs, screening.settings
    )


def retry_delay(deliveries: int) -> float:
    """Seconds before a failed message is delivered again (doubling, capped)."""
    return float(min(RETRY_MAX_S, RETRY_FIRST_S * 2 ** max(0, deliveries - 1)))


def _deliveries(msg: Msg) -> int:
    try:
        return int(msg.metadata.num_delivered or 1)
    except (nats.errors.NotJSMessageError, ValueError):
        return 1


def _sequence(msg: Msg) -> int | None:
    try:
        return int(msg.metadata.sequence.stream)
    except (nats.errors.NotJSMessageError, ValueError):
        return None


def _received_at(msg: Msg) -> datetime:
    # When the stream stored it: the same on every redelivery.
    try:
        stored = msg.metadata.timestamp
    except (nats.errors.NotJSMessageError, ValueError):
        stored = None
    return stored or datetime.now(UTC)


class FeedConsumer:
    """Screens batches of stream messages and starts their alerts (see the module docstring)."""

    def __init__(
        self,
        settings: Settings,
        client: Client,
        js: JetStreamContext,
        windows: WindowStore,
        rules: RuleStore,
        preferences: PreferenceStore,
        start_fraud: StartFraudAlert = start_stream_fraud_alert,
        start_notice: StartNotice = start_notice,
    ):
        self._settings = settings
        self._client = client
        self._js = js
        self._windows = windows
        self._rules = rules
        self._preferences = preferences
        self._start_fraud = start_fraud
        self._start_notice = start_notice
        self._starts = asyncio.Semaphore(settings.feed_start_concurrency)
        # Counts since start (log lines and tests; no personal data).
        self.processed = 0
        self.fraud_alerts = 0
        self.notices = 0
        self.dead_letters = 0
        self.retries = 0
        self.window_conflicts = 0

    async def run(
        self,
        subs: Sequence[JetStreamContext.PullSubscription] | JetStreamContext.PullSubscription,
        stop: asyncio.Event,
    ) -> None:
        """Fetch and handle batches from each subscription (its partitions and the legacy
        subject) until `stop` is set (the batches in hand are finished)."""
        if not isinstance(subs, Sequence):
            subs = [subs]
        await asyncio.gather(*(self._pull(sub, stop) for sub in subs))

    async def _pull(self, sub: JetStreamContext.PullSubscription, stop: asyncio.Event) -> None:
        # One loop per durable consumer, one batch at a time: a partition's batches are
        # handled in stream order, while the process's other partitions go on meanwhile.
        while not stop.is_set():
            try:
                msgs = await sub.fetch(self._settings.feed_batch_size, timeout=FETCH_WAIT_S)
            except TimeoutError:
                continue
            except nats.errors.Error as exc:
                # Disconnected: the client reconnects on its own; fetch again shortly.
                log.warning("fetch failed (%s); retrying", type(exc).__name__)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), 1.0)
                continue
            held = await self.handle_batch(msgs)
            if held > 0:
                # Messages sent back are delivered again before new ones once due: waiting
                # for them keeps a customer's later transactions from overtaking them.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), held + REDELIVERY_MARGIN_S)

    async def handle_batch(self, msgs: list[Msg]) -> float:
        """Screen a fetched batch and start its alerts: customers concurrently, each
        customer's messages in order. Returns the longest backoff a message was sent back
        with (0: none)."""
        groups: dict[str, list[tuple[Msg, Transaction]]] = {}
        for msg in msgs:
            try:
                txn = parse_transaction(msg.data)
            except InvalidTransaction as exc:
                await self._reject(msg, f"invalid transaction: {exc}")
                continue
            groups.setdefault(txn.customer_id, []).append((msg, txn))
        if not groups:
            return 0.0
        async with self._kept_in_progress(msgs):
            try:
                screening = await asyncio.to_thread(self._screening, list(groups))
            except Exception as exc:  # noqa: BLE001 - rules or database unreadable: retry
                # A broken rule file says what is wrong; a driver error may quote data.
                what = str(exc) if isinstance(exc, RuleSetError) else type(exc).__name__
                log.error("cannot read the conditions or preferences, batch waits: %s", what)
                delays = [await self._retry_later(m, exc) for g in groups.values() for m, _ in g]
                return max(delays, default=0.0)
            delays = await asyncio.gather(
                *(self._handle_group(g, screening) for g in groups.values())
            )
        return max(delays, default=0.0)

    def _screening(self, customer_ids: list[str]) -> Screening:
        rule_set: ConditionRuleSet = self._rules.condition_rules()
        stored = self._preferences.preferences_for(customer_ids)
        defaults = rule_set.defaults()
        return Screening(
            rules=rule_set.compiled(),
            settings=rule_set.settings,
            preferences={
                c: effective(c, stored.get(c), defaults).preferences for c in customer_ids
            },
            defaults=defaults,
        )

    async def _handle_group(
        self, group: list[tuple[Msg, Transaction]], screening: Screening
    ) -> float:
        """One customer's messages of a batch: screened in order against windows read and
        written once, their starts concurrent, each acknowledged after its own starts."""
        try:
            matched = await self._screen_group([txn for _, txn in group], screening)
        except Exception as exc:  # noqa: BLE001 - KV unavailable, windows kept changing
            return await self._send_back(group, 0, exc)
        plans: list[AlertPlan | ValidationError] = []
        for (_, txn), matches in zip(group, matched, strict=True):
            try:
                plans.append(plan_alerts(txn, matches, Origin.STREAM))
            except ValidationError as exc:
                plans.append(exc)
        outcomes = await asyncio.gather(
            *(
                self._start(plan, msg)
                for (msg, _), plan in zip(group, plans, strict=True)
                if not isinstance(plan, ValidationError)
            ),
            return_exceptions=True,
        )
        started = iter(outcomes)
        for index, ((msg, _), plan) in enumerate(zip(group, plans, strict=True)):
            if isinstance(plan, ValidationError):
                # The transaction is valid but cannot make an alert (plan_alerts refused it):
                # delivering it again would fail the same way.
                await self._reject(msg, f"cannot start its alert: {describe_invalid(plan)}")
                continue
            outcome = next(started)
            if isinstance(outcome, BaseException):
                if not isinstance(outcome, Exception):
                    raise outcome
                # Any other failure is worth a retry; the customer's later messages go back
                # with it (their starts, if made, are found again by key).
                return await self._send_back(group, index, outcome)
            # A lost ack only brings the message back: its starts are found again by key.
            with contextlib.suppress(nats.errors.Error):
                await msg.ack()
            self.processed += 1
        return 0.0

    async def _send_back(
        self, group: list[tuple[Msg, Transaction]], index: int, exc: Exception
    ) -> float:
        """Retry group[index] after a backoff, and the customer's later messages with it,
        so the windows see them in order."""
        delay = await self._retry_later(group[index][0], exc)
        for later, _ in group[index + 1 :]:
            await self._nak(later, delay)
        return delay

    async def _screen_group(
        self, txns: list[Transaction], screening: Screening
    ) -> list[list[Match]]:
        """The matches of one customer's transactions, in order. The customer's window record
        (its own window and its cards') is read once and written once per batch
        (compare-and-set; all again if another writer came in between), not once per
        transaction and window key: the round trips were most of a message's cost."""
        rules = screening.rules
        # Computed once here: CompiledRules.horizon goes over every condition per call.
        horizons = {"card": rules.horizon("card"), "customer": rules.horizon("customer")}
        if not any(h > timedelta(0) for h in horizons.values()):
            # No condition has a window: nothing to read or keep.
            return [screen(t, Windows.empty_for(t), screening) for t in txns]
        customer_key = txns[0].customer_key
        card_keys = list(dict.fromkeys(t.card_key for t in txns))
        for _ in range(WINDOW_ATTEMPTS):
            read, revision = await self._windows.load(customer_key, card_keys, **horizons)
            record = read
            matched: list[list[Match]] = []
            for txn in txns:
                matched.append(screen(txn, windows_for(record, txn, **horizons), screening))
                record = observe_customer(record, txn, **horizons)
            # Unchanged (every transaction already recorded: a redelivery): nothing to write.
            if record is not read:
                try:
                    await self._windows.save(record, revision)
                except WindowConflict:
                    self.window_conflicts += 1
                    continue
            return matched
        raise WindowConflict(f"window state kept changing over {WINDOW_ATTEMPTS} attempts")

    async def _start(self, plan: AlertPlan, msg: Msg) -> None:
        # Bounded: a batch of many matches must not open hundreds of calls to Temporal.
        if plan.fraud_alert is not None:
            async with self._starts:
                await self._start_fraud(
                    self._client, self._settings, plan.fraud_alert, _received_at(msg)
                )
            self.fraud_alerts += 1
        if plan.notice is not None:
            async with self._starts:
                await self._start_notice(
                    self._client, self._settings, plan.notice, _received_at(msg)
                )
            self.notices += 1

    async def _reject(self, msg: Msg, reason: str) -> None:
        """Dead-letter the message with the reason, then acknowledge it; retry if that fails."""
        try:
            await dead_letter(self._js, self._settings, msg, reason)
        except Exception as exc:  # noqa: BLE001 - the dead-letter stream is unavailable
            await self._retry_later(msg, exc)
            return
        # A lost ack only brings the message back: it is dead-lettered once more.
        with contextlib.suppress(nats.errors.Error):
            await msg.ack()
        self.dead_letters += 1
        log.warning("message %s dead-lettered: %s", _sequence(msg), reason)

    async def _retry_later(self, msg: Msg, exc: BaseException) -> float:
        """Have the message delivered again after a backoff; on its last delivery, dead-letter
        it instead (so it is kept, not dropped by max_deliver)."""
        deliveries = _deliveries(msg)
        if deliveries >= self._settings.feed_max_deliver:
            reason = f"gave up after {deliveries} deliveries: {type(exc).__name__}"
            try:
                await dead_letter(self._js, self._settings, msg, reason)
                await msg.ack()
                self.dead_letters += 1
                log.error("message %s dead-lettered: %s", _sequence(msg), reason)
                return 0.0
            except Exception:  # noqa: BLE001 - nothing else to do but try once more
                log.exception("message %s: dead letter failed", _sequence(msg))
        delay = retry_delay(deliveries)
        self.retries += 1
        log.warning(
            "message %s failed (%s, delivery %d); again in %.1fs",
            _sequence(msg),
            type(exc).__name__,
            deliveries,
            delay,
        )
        await self._nak(msg, delay)
        return delay

    async def _nak(self, msg: Msg, delay: float) -> None:
        # Unacknowledged, it comes back after ack_wait anyway: a failed nak loses nothing.
        with contextlib.suppress(nats.errors.Error):
            await msg.nak(delay=delay)

    @contextlib.asynccontextmanager
    async def _kept_in_progress(self, msgs: list[Msg]) -> AsyncIterator[None]:
        """Tell the server the batch is still being worked on while it takes long (a slow
        Temporal), so it is not delivered to another consumer meanwhile."""

        async def beat() -> None:
            interval = max(0.5, self._settings.feed_ack_wait_seconds / 3)
            while True:
                await asyncio.sleep(interval)
                for msg in msgs:
                    if not msg._ackd:
                        with contextlib.suppress(nats.errors.Error):
                            await msg.in_progress()

        task = asyncio.create_task(beat())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def run_consumer(settings: Settings) -> None:
    """Run one consumer process until SIGINT/SIGTERM (the batch in hand is finished first)."""
    telemetry.setup("feed", settings)
    client = await connect(settings)
    try:
        nc = await connect_nats(settings, name="fiflow-feed")
    except StreamUnavailable as exc:
        raise RuntimeError(str(exc)) from None
    engine = create_db_engine(settings.database_url)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        js = nc.jetstream()
        await ensure_streams(js, settings)
        bucket = await window_bucket(js, settings)
        # Older consumers' per-key entries are read as a fallback only while some remain: a
        # fresh bucket (or one whose old entries expired) costs no extra read per customer.
        legacy = await legacy_windows_present(js, settings)
        windows = WindowStore(
            bucket,
            settings.address_hash_key.get_secret_value(),
            cache_size=settings.feed_window_cache_size,
            legacy_for=LEGACY_WINDOWS_FOR if legacy else timedelta(0),
        )
        subs = await pull_subscriptions(js, settings)
        rules = RuleStore(settings.rules_dir, RuleVersionStore(engine))
        consumer = FeedConsumer(settings, client, js, windows, rules, PreferenceStore(engine))
        log.info(
            "feed consumer %d of %d reading stream %s: partitions %s of %d, and the legacy subject",
            settings.feed_consumer_index + 1,
            settings.feed_consumer_count,
            settings.feed_stream,
            ",".join(str(p) for p in owned_partitions(settings)) or "none",
            settings.feed_partitions,
        )
        await consumer.run(subs, stop)
        log.info(
            "feed consumer stopping: %d screened, %d fraud alerts, %d notices, "
            "%d dead-lettered, %d retried",
            consumer.processed,
            consumer.fraud_alerts,
            consumer.notices,
            consumer.dead_letters,
            consumer.retries,
        )
    except (StreamUnavailable, nats.errors.Error) as exc:
        raise RuntimeError(f"the transaction stream is unavailable: {type(exc).__name__}") from None
    finally:
        with contextlib.suppress(Exception):
            await nc.close()
        engine.dispose()

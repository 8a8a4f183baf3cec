"""The stream consumer process (`fiflow feed`): screen each transaction, start its alerts,
then acknowledge.

A durable JetStream pull consumer shared by every `fiflow feed` process (scaling out is
starting more of them, like workers). For each message:

1. read it as a Transaction; one that is not goes to the dead-letter subject with the reason
   and is acknowledged, so it never blocks the stream;
2. read the windows of its card and customer from the KV bucket, evaluate the active FI
   conditions and the customer's own alert preferences (the FI's defaults for a customer who
   stored none), and record the transaction in the windows,
   written only over the revision read (compare-and-set): two consumers or a redelivery never
   count a transaction twice, and a restart forgets nothing;
3. `plan_alerts` and start what it says, keyed by the transaction id, so a redelivery starts
   nothing new;
4. acknowledge, only now. A failure on the way (Temporal or NATS unavailable) leaves the
   message to be delivered again after a backoff.

A batch is screened concurrently across customers and in stream order within one customer,
so a customer's windows see their transactions in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
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
from fiflow.domain.feeds.windows import Windows, WindowState
from fiflow.domain.rules import RuleSetError
from fiflow.integrations import telemetry
from fiflow.integrations.alert_starts import start_notice, start_stream_fraud_alert
from fiflow.integrations.database import create_db_engine
from fiflow.integrations.nats_stream import (
    InvalidTransaction,
    StreamUnavailable,
    WindowConflict,
    WindowStore,
    connect_nats,
    dead_letter,
    describe_invalid,
    ensure_streams,
    parse_transaction,
    pull_subscription,
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
        # Counts since start (log lines and tests; no personal data).
        self.processed = 0
        self.fraud_alerts = 0
        self.notices = 0
        self.dead_letters = 0
        self.retries = 0
        self.window_conflicts = 0

    async def run(self, sub: JetStreamContext.PullSubscription, stop: asyncio.Event) -> None:
        """Fetch and handle batches until `stop` is set (the batch in hand is finished)."""
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
            await self.handle_batch(msgs)

    async def handle_batch(self, msgs: list[Msg]) -> None:
        """Screen a fetched batch: customers concurrently, each customer's messages in order."""
        groups: dict[str, list[tuple[Msg, Transaction]]] = {}
        for msg in msgs:
            try:
                txn = parse_transaction(msg.data)
            except InvalidTransaction as exc:
                await self._reject(msg, f"invalid transaction: {exc}")
                continue
            groups.setdefault(txn.customer_id, []).append((msg, txn))
        if not groups:
            return
        async with self._kept_in_progress(msgs):
            try:
                screening = await asyncio.to_thread(self._screening, list(groups))
            except Exception as exc:  # noqa: BLE001 - rules or database unreadable: retry
                # A broken rule file says what is wrong; a driver error may quote data.
                what = str(exc) if isinstance(exc, RuleSetError) else type(exc).__name__
                log.error("cannot read the conditions or preferences, batch waits: %s", what)
                for group in groups.values():
                    for msg, _ in group:
                        await self._retry_later(msg, exc)
                return
            await asyncio.gather(*(self._handle_group(g, screening) for g in groups.values()))

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
    ) -> None:
        for index, (msg, txn) in enumerate(group):
            try:
                await self._handle(msg, txn, screening)
            except ValidationError as exc:
                # The transaction is valid but cannot make an alert (plan_alerts refused it):
                # delivering it again would fail the same way.
                await self._reject(msg, f"cannot start its alert: {describe_invalid(exc)}")
            except Exception as exc:  # noqa: BLE001 - any other failure is worth a retry
                delay = await self._retry_later(msg, exc)
                # The customer's later messages wait as well: windows see them in order.
                for later, _ in group[index + 1 :]:
                    await self._nak(later, delay)
                return

    async def _handle(self, msg: Msg, txn: Transaction, screening: Screening) -> None:
        matches = await self._screen(txn, screening)
        plan = plan_alerts(txn, matches, Origin.STREAM)
        await self._start(plan, msg)
        await msg.ack()
        self.processed += 1

    async def _screen(self, txn: Transaction, screening: Screening) -> list[Match]:
        """The transaction's matches, its windows updated by compare-and-set."""
        rules = screening.rules
        kinds = [k for k in ("card", "customer") if rules.horizon(k) > timedelta(0)]
        keys = {"card": txn.card_key, "customer": txn.customer_key}
        for _ in range(WINDOW_ATTEMPTS):
            loaded = await asyncio.gather(*(self._windows.load(keys[k]) for k in kinds))
            states = {k: state for k, (state, _) in zip(kinds, loaded, strict=True)}
            revisions = {k: rev for k, (_, rev) in zip(kinds, loaded, strict=True)}
            windows = Windows.model_construct(
                card=states.get("card") or WindowState(key=txn.card_key),
                customer=states.get("customer") or WindowState(key=txn.customer_key),
            )
            matches = screen(txn, windows, screening)
            after = rules.observe(windows, txn)
            try:
                for kind in kinds:
                    before, new = getattr(windows, kind), getattr(after, kind)
                    # Already recorded (a redelivery): nothing to write.
                    if new is not before:
                        await self._windows.save(new, revisions[kind])
            except WindowConflict:
                self.window_conflicts += 1
                continue
            return matches
        raise WindowConflict(f"window state kept changing over {WINDOW_ATTEMPTS} attempts")

    async def _start(self, plan: AlertPlan, msg: Msg) -> None:
        if plan.fraud_alert is not None:
            await self._start_fraud(
                self._client, self._settings, plan.fraud_alert, _received_at(msg)
            )
            self.fraud_alerts += 1
        if plan.notice is not None:
            await self._start_notice(self._client, self._settings, plan.notice, _received_at(msg))
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
        windows = WindowStore(
            await window_bucket(js, settings), settings.address_hash_key.get_secret_value()
        )
        sub = await pull_subscription(js, settings)
        rules = RuleStore(settings.rules_dir, RuleVersionStore(engine))
        consumer = FeedConsumer(settings, client, js, windows, rules, PreferenceStore(engine))
        log.info("feed consumer %s reading stream %s", settings.feed_consumer, settings.feed_stream)
        await consumer.run(sub, stop)
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

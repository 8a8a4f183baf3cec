"""Seeded trials: duplicated and shuffled webhooks and events end as one in-order delivery would.

Each trial builds a stream of messages (or interaction events), copies some of them (provider
retries) and shuffles the copies in. The final state of each piece that deduplicates or
orders must equal what a single, in-order delivery of each message leaves:

- the conversation (its domain code, as the workflow drives it): duplicates change nothing,
  wherever they land; routing follows the first arrivals (10,000 trials);
- an interaction's reason and events, with the real SQLite-backed event store dropping the
  duplicates: the same whatever order the events came in (10,000 trials for the reason,
  the store in 150 of them);
- the MessageSid ledger on SQLite, as the webhook uses it: each message passed on once, in
  first-arrival order (150 trials);
- the durable inbox on SQLite, with the relay's claim and mark-delivered: each queued message
  delivered once, each address's in the order first queued (150 trials).

The SQLite pieces cost about a millisecond a call, hence fewer trials than the pure ones.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

import pytest
from sqlalchemy.engine import Engine

from fiflow.domain.conversations import InboundMessage
from fiflow.domain.interactions import EventType, InteractionChannel, InteractionEvent
from fiflow.domain.triggers import latest_reason
from fiflow.integrations.database import create_db_engine, upgrade_database
from fiflow.integrations.inbox import Inbox
from fiflow.integrations.interactions_store import InteractionStore, StoredEvent
from fiflow.integrations.message_ledger import MessageLedger
from tests.domain.conversation_machine import Machine

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
TRIALS = 10_000
DB_TRIALS = 150
T = TypeVar("T")

BODIES = ["YES", "no", "yes {a}", "NO {b}", "STOP", "START", "HELP", "what?", "y", "nope {a}"]
TOPICS = ["card_lost", "billing", "fraud", None, None]


def with_retries(rng: random.Random, items: list[T], *, shuffle: bool) -> list[T]:
    """The items, some repeated (a provider retry), every copy after its original.

    With `shuffle` the originals are shuffled too (the source does not keep order).
    """
    stream = list(items)
    if shuffle:
        rng.shuffle(stream)
    for item in items:
        for _ in range(rng.choice([0, 0, 1, 2])):
            first = stream.index(item)
            stream.insert(rng.randint(first + 1, len(stream)), item)
    return stream


def first_arrivals(stream: list[T]) -> list[T]:
    """Each item once, where it first arrived."""
    seen: list[T] = []
    for item in stream:
        if item not in seen:
            seen.append(item)
    return seen


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    url = f"sqlite:///{Path(tmp_path_factory.mktemp('trials')) / 'fiflow.db'}"
    upgrade_database(url)
    engine = create_db_engine(url)
    yield engine
    engine.dispose()


# --- the conversation ----------------------------------------------------------------------


_OPEN = Machine()
CODES = {"a": _OPEN.register("al-a", T0), "b": _OPEN.register("al-b", T0)}


def _conversation(deliveries: list[InboundMessage]) -> Machine:
    """Two open alerts, then the deliveries."""
    machine = Machine(state=_OPEN.state.model_copy(deep=True))
    codes = CODES
    for n, msg in enumerate(deliveries):
        body = msg.body.format(**codes)
        machine.deliver(msg.model_copy(update={"body": body}), T0 + timedelta(seconds=n))
    return machine


def test_duplicated_and_shuffled_messages_route_as_one_in_order_delivery() -> None:
    for seed in range(TRIALS):
        rng = random.Random(seed)
        messages = [
            InboundMessage(message_id=f"SM{seed}-{i}", body=rng.choice(BODIES), received_at=T0)
            for i in range(rng.randint(1, 8))
        ]
        stream = with_retries(rng, messages, shuffle=True)
        once = first_arrivals(stream)
        # Time stamps differ with the number of deliveries, not with what they mean.
        got, want = _conversation(stream), _conversation(once)
        assert [(d.message_id, d.route, d.alert_id, d.outcome) for d in got.decisions] == [
            (d.message_id, d.route, d.alert_id, d.outcome) for d in want.decisions
        ], seed
        assert got.state.seen_message_ids == want.state.seen_message_ids, seed
        assert got.state.sms_opted_out == want.state.sms_opted_out, seed
        assert [a.alert_id for a in got.state.open_alerts] == [
            a.alert_id for a in want.state.open_alerts
        ], seed
        assert [c.alert_id for c in got.state.closed_alerts] == [
            c.alert_id for c in want.state.closed_alerts
        ], seed
        assert got.state.pending == [], seed


# --- interaction events --------------------------------------------------------------------


def _events(rng: random.Random, seed: int) -> list[InteractionEvent]:
    events = []
    at = T0
    for i in range(rng.randint(1, 8)):
        at += timedelta(seconds=rng.choice([0, 1, 5, 60]))  # equal times happen
        topic = rng.choice(TOPICS)
        events.append(
            InteractionEvent(
                event_id=f"ev{seed}-{i}",
                channel=InteractionChannel.IVR,
                type=EventType.MENU_SELECTED,
                attributes={"topic": topic} if topic else {},
                occurred_at=at,
                accepted_at=at,
            )
        )
    return events


def _take(events: list[InteractionEvent]) -> tuple[list[InteractionEvent], str | None]:
    """The workflow's event handler: drop a seen event ID, keep the rest; the reason."""
    taken: list[InteractionEvent] = []
    seen: set[str] = set()
    reason: str | None = None
    for ev in events:
        if ev.event_id in seen:
            continue
        seen.add(ev.event_id)
        taken.append(ev)
        reason = latest_reason(taken) or reason
    return taken, reason


def test_duplicated_and_shuffled_events_leave_the_in_order_reason(engine: Engine) -> None:
    store = InteractionStore(engine)
    for seed in range(TRIALS):
        rng = random.Random(seed)
        events = _events(rng, seed)
        stream = with_retries(rng, events, shuffle=True)
        taken, reason = _take(stream)
        in_order, in_order_reason = _take(events)
        assert sorted(e.event_id for e in taken) == [e.event_id for e in in_order], seed
        assert reason == in_order_reason, seed
        if seed < DB_TRIALS:
            # What the API stores: the first copy of each event, once.
            interaction = f"int-{seed}"
            new = [
                store.record_event(
                    StoredEvent(
                        event_id=ev.event_id,
                        interaction_id=interaction,
                        type=ev.type.value,
                        occurred_at=ev.occurred_at,
                        accepted_at=ev.accepted_at,
                        attributes=ev.attributes,
                    )
                )
                for ev in stream
            ]
            assert new.count(True) == len(events), seed
            stored = store.events(interaction)
            assert [s.event_id for s in stored] == [e.event_id for e in first_arrivals(stream)]
            by_id = {e.event_id: e for e in events}
            assert latest_reason([by_id[s.event_id] for s in stored]) == in_order_reason, seed


# --- the MessageSid ledger, as the SMS webhook uses it --------------------------------------


def test_the_ledger_passes_each_message_on_once(engine: Engine) -> None:
    ledger = MessageLedger(engine)
    for seed in range(DB_TRIALS):
        rng = random.Random(seed)
        sids = [f"SMledger{seed}-{i}" for i in range(rng.randint(1, 8))]
        stream = with_retries(rng, sids, shuffle=True)
        passed_on: list[str] = []
        for sid in stream:
            if ledger.seen(sid):
                continue  # a replay: dropped with an empty TwiML answer
            passed_on.append(sid)
            ledger.record(sid, T0)
        assert passed_on == first_arrivals(stream), seed
        assert all(ledger.seen(s) for s in sids), seed


# --- the durable inbox, with the relay's claim and mark-delivered --------------------------


def test_the_inbox_delivers_each_message_once_in_queued_order(engine: Engine) -> None:
    inbox = Inbox(engine, None)
    now = T0
    for seed in range(DB_TRIALS):
        rng = random.Random(seed)
        queued = [
            (f"addr{seed}-{rng.randint(0, 1)}", f"SMinbox{seed}-{i}")
            for i in range(rng.randint(1, 8))
        ]
        # Retries of a queued message come back while it waits; arrivals keep their order.
        stream = with_retries(rng, queued, shuffle=False)
        added = [inbox.add("sms", a, m, {"body": m}, now) for a, m in stream]
        assert added.count(True) == len(queued), seed
        delivered: dict[str, list[str]] = {}
        while claimed := inbox.claim(now, timedelta(seconds=60)):
            # A relay may stop part-way (Temporal down): the rest of the address waits.
            stop = rng.randint(1, len(claimed))
            for message in claimed[:stop]:
                delivered.setdefault(message.address_digest, []).append(message.message_id)
                inbox.mark_delivered(message.id, now)
            inbox.release(m.id for m in claimed[stop:])
        for address in {a for a, _ in queued}:
            assert delivered[address] == [m for a, m in queued if a == address], seed
        assert inbox.pending_count() == 0, seed

"""The durable inbox against SQLite and a real PostgreSQL: queue, order, claim, deliver, purge."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from fiflow.integrations.codec import EncryptionCodec, KeyRing, new_key
from fiflow.integrations.database import create_db_engine
from fiflow.integrations.inbox import Inbox, has_pending

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
LEASE = timedelta(seconds=60)
PHONE = "+12025550143"


@pytest.fixture
def inbox(engine: Engine) -> Inbox:
    return Inbox(engine, EncryptionCodec(KeyRing.parse(new_key())))


def _sms(n: int) -> dict[str, str]:
    return {"sender": PHONE, "body": f"YES {n:04d}", "received_at": T0.isoformat()}


def test_content_is_stored_sealed_and_comes_back_whole(inbox: Inbox, engine: Engine) -> None:
    assert inbox.add("sms", "addr-a", "SM1", _sms(1), T0) is True

    with engine.connect() as conn:
        [stored] = conn.execute(sa.text("SELECT payload FROM inbound_inbox")).scalars().all()
    # Neither the number nor the text is readable in the database.
    assert PHONE not in str(stored) and "YES" not in str(stored)
    [message] = inbox.pending()
    assert message.content == _sms(1)
    assert (message.channel, message.address_digest, message.message_id) == ("sms", "addr-a", "SM1")
    assert message.received_at == T0 and message.attempts == 0


def test_a_message_id_is_queued_once_per_channel(inbox: Inbox) -> None:
    assert inbox.add("sms", "addr-a", "SM1", _sms(1), T0) is True
    assert inbox.add("sms", "addr-a", "SM1", _sms(1), T0) is False
    assert inbox.add("push", "alert-x", "SM1", {"alert_id": "x"}, T0) is True
    assert [m.channel for m in inbox.pending()] == ["sms", "push"]


def test_unknown_channel_is_refused(inbox: Inbox) -> None:
    with pytest.raises(ValueError, match="channel"):
        inbox.add("email", "addr-a", "M1", {}, T0)


def test_pending_is_oldest_first_per_address(inbox: Inbox, engine: Engine) -> None:
    for n, address in enumerate(["a", "b", "a", "a", "b"]):
        inbox.add("sms", address, f"SM{n}", _sms(n), T0 + timedelta(seconds=n))

    assert [m.message_id for m in inbox.pending("a")] == ["SM0", "SM2", "SM3"]
    assert has_pending(engine, "b") and not has_pending(engine, "c")
    assert inbox.pending_count() == 5
    inbox.mark_delivered(inbox.pending("b")[0].id, T0)
    assert [m.message_id for m in inbox.pending("b")] == ["SM4"]


def test_claim_leases_whole_addresses_and_skips_held_ones(inbox: Inbox) -> None:
    for n, address in enumerate(["a", "b", "a"]):
        inbox.add("sms", address, f"SM{n}", _sms(n), T0)

    first = inbox.claim(T0, LEASE, max_addresses=1)
    assert [m.message_id for m in first] == ["SM0", "SM2"]
    # Another relay gets the other address, never a later message of the held one.
    second = inbox.claim(T0, LEASE)
    assert [m.message_id for m in second] == ["SM1"]
    assert inbox.claim(T0, LEASE) == []
    # A message of a held address that came after the claim waits for the holder.
    inbox.add("sms", "a", "SM9", _sms(9), T0)
    assert inbox.claim(T0, LEASE) == []
    # A lease that ran out frees the address (a crashed relay).
    again = inbox.claim(T0 + LEASE + timedelta(seconds=1), LEASE)
    assert [m.message_id for m in again] == ["SM0", "SM1", "SM2", "SM9"]


def test_a_renewed_lease_keeps_a_long_backlog_with_its_relay(inbox: Inbox) -> None:
    for n in range(3):
        inbox.add("sms", "a", f"SM{n}", _sms(n), T0)
    claimed = inbox.claim(T0, LEASE)
    # The holder delivers one message late in its lease and renews the rest.
    late = T0 + LEASE - timedelta(seconds=5)
    inbox.mark_delivered(claimed[0].id, late)
    inbox.renew([m.id for m in claimed[1:]], late + LEASE)
    # Past the first lease, another relay still cannot take the address.
    assert inbox.claim(T0 + LEASE + timedelta(seconds=1), LEASE) == []
    assert [m.message_id for m in inbox.claim(late + LEASE + timedelta(seconds=1), LEASE)] == [
        "SM1",
        "SM2",
    ]


def test_a_failure_is_counted_and_released_for_the_next_round(inbox: Inbox) -> None:
    inbox.add("sms", "a", "SM0", _sms(0), T0)
    inbox.add("sms", "a", "SM1", _sms(1), T0)
    claimed = inbox.claim(T0, LEASE)

    inbox.mark_delivered(claimed[0].id, T0)
    inbox.record_failure(claimed[1].id, "UNAVAILABLE")
    inbox.release([claimed[1].id])

    [left] = inbox.claim(T0, LEASE)
    assert left.message_id == "SM1" and left.attempts == 1


def test_purge_removes_only_messages_delivered_before_the_cutoff(
    inbox: Inbox, engine: Engine
) -> None:
    for n in range(3):
        inbox.add("sms", "a", f"SM{n}", _sms(n), T0)
    old, recent, _pending = inbox.pending()
    inbox.mark_delivered(old.id, T0 - timedelta(days=10))
    inbox.mark_delivered(recent.id, T0, note="alert_closed")

    assert inbox.purge(T0 - timedelta(days=7)) == 1
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT message_id, last_error FROM inbound_inbox ORDER BY id")
        ).all()
    assert [tuple(r) for r in rows] == [("SM1", "alert_closed"), ("SM2", None)]


def test_inbox_without_a_codec_reads_what_it_wrote(engine: Engine) -> None:
    clear = Inbox(engine, None)
    clear.add("sms", "a", "SM0", _sms(0), T0)
    assert clear.pending()[0].content == _sms(0)


def test_concurrent_relays_never_share_an_address(migrated_url: str) -> None:
    """Eight relays in threads, each with its own engine, claim at once: no row twice."""
    codec = EncryptionCodec(KeyRing.parse(new_key()))
    engines = [create_db_engine(migrated_url) for _ in range(8)]
    try:
        setup = Inbox(engines[0], codec)
        for n in range(40):
            setup.add("sms", f"addr-{n % 10}", f"SM{n}", _sms(n), T0)
        barrier = threading.Barrier(len(engines))

        def relay(engine: Engine) -> list[str]:
            barrier.wait()
            return [m.address_digest for m in Inbox(engine, codec).claim(T0, LEASE, 3)]

        with ThreadPoolExecutor(len(engines)) as pool:
            claims = list(pool.map(relay, engines))
    finally:
        for e in engines:
            e.dispose()

    held = [set(c) for c in claims]
    every = [a for c in held for a in c]
    assert len(every) == len(set(every)), claims  # no address held by two relays
    # Every address taken, each with all four of its messages.
    assert sorted(every) == sorted(f"addr-{n}" for n in range(10))
    assert all(len(c) == 4 * len(set(c)) for c in claims), claims

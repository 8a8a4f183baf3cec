"""Interaction context against SQLite and a real PostgreSQL: schema, events, upserts, history."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta, timezone
from types import SimpleNamespace
from typing import Any, cast

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from pydantic import ValidationError
from sqlalchemy.engine import Engine

# The feed-batch tables join the shared metadata when their store is imported: import it so
# the migrations-vs-tables check sees every table whichever test runs first.
import fiflow.integrations.batch_store  # noqa: F401
from fiflow.integrations.database import (
    alembic_config,
    create_db_engine,
    current_revision,
    head_revision,
    metadata,
    upgrade_database,
)
from fiflow.integrations.interactions_store import (
    InteractionRecord,
    InteractionStore,
    StoredEvent,
)

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
INDIA = timezone(timedelta(hours=5, minutes=30))
EST = timezone(timedelta(hours=-5))

NESTED: dict[str, Any] = {
    "topic": "card_declined",
    "menu": [1, 2.5, -3],
    "caller": {"name": "Zoë Ångström", "note": "信用 ✓ 🏦", "vip": True, "none": None},
    "big": 12345678901234567,
}


@pytest.fixture
def store(engine: Engine) -> InteractionStore:
    return InteractionStore(engine)


def _event(
    event_id: str = "evt-1",
    *,
    interaction_id: str = "int-1",
    type: str = "menu_selected",
    occurred_at: datetime = T0,
    accepted_at: datetime | None = None,
    attributes: dict[str, Any] | None = None,
    **extra: Any,
) -> StoredEvent:
    return StoredEvent(
        event_id=event_id,
        interaction_id=interaction_id,
        customer_id=extra.pop("customer_id", "cust-0001"),
        channel=extra.pop("channel", "ivr"),
        type=type,
        occurred_at=occurred_at,
        accepted_at=accepted_at if accepted_at is not None else occurred_at + timedelta(seconds=1),
        attributes=attributes if attributes is not None else {"n": event_id},
        **extra,
    )


def _record(
    interaction_id: str = "int-1",
    *,
    customer_id: str | None = "cust-0001",
    started_at: datetime = T0,
    **changes: Any,
) -> InteractionRecord:
    values: dict[str, Any] = {
        "interaction_id": interaction_id,
        "customer_id": customer_id,
        "channel": "ivr",
        "status": "open",
        "reason": None,
        "outcome": None,
        "started_at": started_at,
        "ended_at": None,
        "updated_at": started_at,
        "summary": None,
    }
    values.update(changes)
    return InteractionRecord(**values)


def _ids(records: list[InteractionRecord]) -> list[str]:
    return [r.interaction_id for r in records]


# --- migration --------------------------------------------------------------------------------


def _indexes(inspector: Any, table: str) -> dict[str, list[str]]:
    # PostgreSQL also lists the index behind each unique constraint; those are checked as
    # constraints instead.
    return {
        i["name"]: i["column_names"]
        for i in inspector.get_indexes(table)
        if not i.get("duplicates_constraint")
    }


def test_migration_creates_interaction_tables(fresh_database_url: str) -> None:
    upgrade_database(fresh_database_url)

    assert current_revision(fresh_database_url) == head_revision()
    engine = create_db_engine(fresh_database_url)
    try:
        inspector = sa.inspect(engine)
        columns = {c["name"]: c for c in inspector.get_columns("interactions")}
        assert list(columns) == [
            "interaction_id",
            "customer_id",
            "channel",
            "status",
            "reason",
            "outcome",
            "started_at",
            "ended_at",
            "updated_at",
            "summary",
        ]
        assert [n for n, c in columns.items() if c["nullable"]] == [
            "customer_id",
            "reason",
            "outcome",
            "ended_at",
            "summary",
        ]
        assert inspector.get_pk_constraint("interactions")["constrained_columns"] == [
            "interaction_id"
        ]
        assert _indexes(inspector, "interactions") == {
            "ix_interactions_customer_id_started_at": ["customer_id", "started_at"]
        }

        columns = {c["name"]: c for c in inspector.get_columns("interaction_events")}
        assert list(columns) == [
            "seq",
            "event_id",
            "interaction_id",
            "customer_id",
            "channel",
            "type",
            "occurred_at",
            "accepted_at",
            "late",
            "attributes",
        ]
        assert [n for n, c in columns.items() if c["nullable"]] == ["customer_id", "channel"]
        assert columns["late"]["default"] is not None
        assert inspector.get_pk_constraint("interaction_events")["constrained_columns"] == ["seq"]
        assert _indexes(inspector, "interaction_events") == {
            "ix_interaction_events_interaction_id": ["interaction_id"]
        }
        uniques = inspector.get_unique_constraints("interaction_events")
        assert [(u["name"], u["column_names"]) for u in uniques] == [
            ("uq_interaction_events_event_id", ["event_id"])
        ]
        if engine.dialect.name == "postgresql":
            assert columns["attributes"]["type"].__class__.__name__ == "JSONB"
            occurred_type = columns["occurred_at"]["type"]
            assert isinstance(occurred_type, sa.DateTime)
            assert occurred_type.timezone is True
            assert columns["seq"]["autoincrement"] is True
    finally:
        engine.dispose()


def test_late_defaults_to_false_in_the_database(engine: Engine) -> None:
    # A writer that does not name the column (an older release, a manual fix) gets false.
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO interaction_events (event_id, interaction_id, type, occurred_at,"
                " accepted_at, attributes) VALUES ('e', 'i', 't', :at, :at, '{}')"
            ),
            {"at": T0.replace(tzinfo=None)},
        )
    [event] = InteractionStore(engine).events("i")
    assert event.late is False


def test_downgrade_to_0002_drops_the_new_tables(migrated_url: str) -> None:
    command.downgrade(alembic_config(migrated_url), "0002")

    assert current_revision(migrated_url) == "0002"
    engine = create_db_engine(migrated_url)
    try:
        tables = set(sa.inspect(engine).get_table_names())
        assert {"interactions", "interaction_events", "rule_versions"}.isdisjoint(tables)
        assert "credit_reports" in tables
    finally:
        engine.dispose()

    upgrade_database(migrated_url)
    assert current_revision(migrated_url) == head_revision()


def test_migrations_match_the_table_definitions(engine: Engine) -> None:
    # The migration spells its columns out; this catches the two drifting apart, server
    # defaults (interaction_events.late) included.
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_server_default": True})
        diffs = compare_metadata(context, metadata)
    assert diffs == []


def test_drift_check_sees_the_new_tables(engine: Engine) -> None:
    # Proof that the check above covers these tables: a model that lost an index and a
    # unique constraint no longer matches the migrated database.
    changed = sa.MetaData()
    for table in metadata.sorted_tables:
        copy = table.to_metadata(changed)
        if table.name in ("interactions", "interaction_events", "rule_versions"):
            for index in list(copy.indexes):
                copy.indexes.discard(index)
            for constraint in list(copy.constraints):
                if isinstance(constraint, sa.UniqueConstraint):
                    copy.constraints.discard(constraint)
    with engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn), changed)
    removed = {(d[0], d[1].name) for d in diffs if isinstance(d, tuple)}
    assert removed == {
        ("remove_index", "ix_interactions_customer_id_started_at"),
        ("remove_index", "ix_interaction_events_interaction_id"),
        ("remove_index", "ix_rule_versions_name_activated_at"),
        ("remove_constraint", "uq_interaction_events_event_id"),
        ("remove_constraint", "uq_rule_versions_name_version"),
    }


def test_unsupported_dialect_is_refused() -> None:
    # Only the dialect name is consulted, so a stand-in avoids needing a MySQL driver.
    engine = cast(Engine, SimpleNamespace(dialect=SimpleNamespace(name="mysql")))
    with pytest.raises(ValueError, match="PostgreSQL and SQLite, not mysql"):
        InteractionStore(engine)


# --- events -----------------------------------------------------------------------------------


def test_record_event_roundtrips_every_field(store: InteractionStore) -> None:
    event = _event(attributes=NESTED, late=True, customer_id=None, channel=None)

    assert store.record_event(event) is True
    [got] = store.events("int-1")

    assert got.seq is not None
    assert got.model_dump(exclude={"seq"}) == event.model_dump(exclude={"seq"})
    assert got.late is True
    assert got.customer_id is None and got.channel is None
    assert got.attributes == NESTED
    assert isinstance(got.attributes["menu"][1], float)


def test_record_event_defaults_late_to_false(store: InteractionStore) -> None:
    store.record_event(_event())
    [got] = store.events("int-1")
    assert got.late is False


def test_repeated_event_id_keeps_the_first_row(store: InteractionStore) -> None:
    first = _event("evt-1", type="menu_selected", attributes={"v": 1})
    again = _event("evt-1", type="agent_note", attributes={"v": 2}, late=True)
    elsewhere = _event("evt-1", interaction_id="int-2", attributes={"v": 3})

    assert store.record_event(first) is True
    assert store.record_event(again) is False
    assert store.record_event(elsewhere) is False
    assert store.record_event(first) is False

    [got] = store.events("int-1")
    assert got.model_dump(exclude={"seq"}) == first.model_dump(exclude={"seq"})
    assert store.events("int-2") == []


def test_events_come_in_acceptance_order(store: InteractionStore) -> None:
    # Neither occurred_at nor event_id order matches the order of acceptance.
    accepted = [("evt-c", 3), ("evt-a", 1), ("evt-d", 0), ("evt-b", 2)]
    for event_id, minute in accepted:
        assert store.record_event(_event(event_id, occurred_at=T0 + timedelta(minutes=minute)))
    store.record_event(_event("evt-other", interaction_id="int-2"))
    assert store.record_event(_event("evt-a")) is False

    got = store.events("int-1")

    assert [e.event_id for e in got] == ["evt-c", "evt-a", "evt-d", "evt-b"]
    seqs = [e.seq for e in got if e.seq is not None]
    assert len(set(seqs)) == 4
    assert seqs == sorted(seqs)
    assert [e.event_id for e in store.events("int-2")] == ["evt-other"]


def test_given_seq_is_ignored(store: InteractionStore) -> None:
    # The order of acceptance is the database's to assign, never a caller's.
    store.record_event(_event("evt-1", seq=999))
    store.record_event(_event("evt-2", seq=-5))

    got = store.events("int-1")

    assert [e.event_id for e in got] == ["evt-1", "evt-2"]
    first, second = got[0].seq, got[1].seq
    assert first is not None and second is not None
    assert first != 999
    assert first < second


def test_events_of_unknown_interaction_is_empty(store: InteractionStore) -> None:
    assert store.events("nope") == []


def test_event_datetimes_come_back_aware_in_utc(store: InteractionStore) -> None:
    occurred = datetime(2025, 3, 1, 17, 30, 15, 123456, tzinfo=INDIA)
    store.record_event(_event(occurred_at=occurred, accepted_at=occurred.astimezone(EST)))

    [got] = store.events("int-1")

    for value in (got.occurred_at, got.accepted_at):
        assert value.utcoffset() == timedelta(0)
        assert value == occurred
    assert got.occurred_at.replace(tzinfo=None) == datetime(2025, 3, 1, 12, 0, 15, 123456)


def test_concurrent_record_event_stores_exactly_one(store: InteractionStore) -> None:
    threads = 8
    barrier = threading.Barrier(threads)
    events = [_event("evt-race", attributes={"attempt": i}) for i in range(threads)]

    def call(i: int) -> bool:
        barrier.wait(timeout=10)
        return store.record_event(events[i])

    with ThreadPoolExecutor(max_workers=threads) as pool:
        results = list(pool.map(call, range(threads)))

    assert results.count(True) == 1
    [got] = store.events("int-1")
    assert got.attributes == {"attempt": results.index(True)}


def test_invalid_events_are_refused() -> None:
    with pytest.raises(ValidationError, match="timezone"):
        _event(occurred_at=datetime(2025, 3, 1, 12, 0))
    with pytest.raises(ValidationError, match="timezone"):
        _event(accepted_at=datetime(2025, 3, 1, 12, 0))
    with pytest.raises(ValidationError, match="plain JSON"):
        _event(attributes={"when": T0})
    with pytest.raises(ValidationError, match="plain JSON"):
        _event(attributes={"score": float("nan")})
    with pytest.raises(ValidationError, match="at most 16"):
        _event(channel="c" * 17)
    with pytest.raises(ValidationError, match="at most 128"):
        _event("e" * 129)


# --- interactions -----------------------------------------------------------------------------


def test_upsert_inserts_and_get_returns_it(store: InteractionStore) -> None:
    record = _record(
        reason="card_declined",
        status="closed",
        outcome="resolved",
        ended_at=T0 + timedelta(minutes=5),
        updated_at=T0 + timedelta(minutes=5),
        summary={"fired": ["repeat_caller"], "nested": NESTED},
    )

    store.upsert_interaction(record)

    assert store.get_interaction("int-1") == record


def test_get_unknown_interaction_is_none(store: InteractionStore) -> None:
    assert store.get_interaction("nope") is None


def test_none_fields_do_not_overwrite_stored_values(store: InteractionStore) -> None:
    store.upsert_interaction(
        _record(reason="card_declined", outcome="pending", summary={"fired": ["t1"]})
    )
    closed_at = T0 + timedelta(minutes=9)

    # A late writer that knows only the status and when it closed.
    store.upsert_interaction(
        _record(
            customer_id=None,
            status="closed",
            ended_at=closed_at,
            updated_at=closed_at,
            started_at=closed_at,
        )
    )

    assert store.get_interaction("int-1") == _record(
        reason="card_declined",
        outcome="pending",
        summary={"fired": ["t1"]},
        status="closed",
        ended_at=closed_at,
        updated_at=closed_at,
    )


def test_given_fields_overwrite_stored_values(store: InteractionStore) -> None:
    store.upsert_interaction(
        _record(customer_id=None, reason="card_declined", outcome="pending", summary={"a": 1})
    )
    later = T0 + timedelta(minutes=3)
    update = _record(
        channel="agent",
        status="closed",
        reason="fraud_report",
        outcome="escalated",
        ended_at=later,
        updated_at=later,
        summary={"b": 2},
    )

    store.upsert_interaction(update)

    # Summary is replaced, not merged; the customer identified mid-call is filled in.
    assert store.get_interaction("int-1") == update


def test_none_summary_is_stored_as_sql_null(store: InteractionStore, engine: Engine) -> None:
    # JSON 'null' would defeat the "None keeps the stored value" rule; SQL NULL does not.
    store.upsert_interaction(_record())
    with engine.connect() as conn:
        assert (
            conn.execute(
                sa.text("SELECT count(*) FROM interactions WHERE summary IS NULL")
            ).scalar()
            == 1
        )

    store.upsert_interaction(_record(summary={"x": 1}))
    store.upsert_interaction(_record())
    got = store.get_interaction("int-1")
    assert got is not None and got.summary == {"x": 1}


def test_started_at_keeps_the_earliest(store: InteractionStore) -> None:
    store.upsert_interaction(_record(started_at=T0 + timedelta(minutes=10)))

    store.upsert_interaction(_record(started_at=T0 + timedelta(minutes=20)))
    got = store.get_interaction("int-1")
    assert got is not None and got.started_at == T0 + timedelta(minutes=10)

    # Earlier, and written in another zone: compared as instants, not as wall-clock text.
    earlier = (T0 + timedelta(minutes=2)).astimezone(INDIA)
    store.upsert_interaction(_record(started_at=earlier))
    got = store.get_interaction("int-1")
    assert got is not None and got.started_at == T0 + timedelta(minutes=2)

    store.upsert_interaction(_record(started_at=(T0 + timedelta(minutes=5)).astimezone(EST)))
    got = store.get_interaction("int-1")
    assert got is not None and got.started_at == T0 + timedelta(minutes=2)


def test_updated_at_takes_the_latest_write(store: InteractionStore) -> None:
    store.upsert_interaction(_record(updated_at=T0 + timedelta(minutes=1)))
    store.upsert_interaction(_record(updated_at=T0 + timedelta(minutes=7)))

    got = store.get_interaction("int-1")
    assert got is not None and got.updated_at == T0 + timedelta(minutes=7)


def test_interaction_datetimes_come_back_aware_in_utc(store: InteractionStore) -> None:
    started = datetime(2025, 3, 1, 17, 30, 15, 654321, tzinfo=INDIA)
    store.upsert_interaction(
        _record(started_at=started, ended_at=started.astimezone(EST), updated_at=started)
    )

    got = store.get_interaction("int-1")

    assert got is not None
    for value in (got.started_at, got.ended_at, got.updated_at):
        assert value is not None
        assert value.utcoffset() == timedelta(0)
        assert value == started
    assert got.started_at.replace(tzinfo=None) == datetime(2025, 3, 1, 12, 0, 15, 654321)


def test_concurrent_upserts_merge_fields_and_keep_the_earliest_start(
    store: InteractionStore,
) -> None:
    threads = 8
    barrier = threading.Barrier(threads)

    def call(i: int) -> None:
        barrier.wait(timeout=10)
        store.upsert_interaction(
            _record(
                started_at=T0 + timedelta(minutes=i),
                reason="card_declined" if i == 3 else None,
                outcome="resolved" if i == 5 else None,
            )
        )

    with ThreadPoolExecutor(max_workers=threads) as pool:
        for future in [pool.submit(call, i) for i in range(threads)]:
            future.result()

    got = store.get_interaction("int-1")
    assert got is not None
    assert got.started_at == T0
    assert (got.reason, got.outcome) == ("card_declined", "resolved")


def test_invalid_interactions_are_refused() -> None:
    with pytest.raises(ValidationError, match="timezone"):
        _record(started_at=datetime(2025, 3, 1, 12, 0))
    with pytest.raises(ValidationError, match="timezone"):
        _record(ended_at=datetime(2025, 3, 1, 12, 5))
    with pytest.raises(ValidationError, match="'open' or 'closed'"):
        _record(status="ended")
    with pytest.raises(ValidationError, match="plain JSON"):
        _record(summary={"x": {1, 2}})
    with pytest.raises(ValidationError, match="at most 64"):
        _record(reason="r" * 65)


# --- a customer's interactions ----------------------------------------------------------------


def _history(store: InteractionStore) -> None:
    for i in range(6):
        store.upsert_interaction(
            _record(f"int-{i}", started_at=T0 + timedelta(hours=i), reason=f"r{i}")
        )
    store.upsert_interaction(_record("other-1", customer_id="cust-0002", started_at=T0))
    store.upsert_interaction(_record("anon-1", customer_id=None, started_at=T0))


def test_customer_interactions_newest_first(store: InteractionStore) -> None:
    _history(store)

    got = store.customer_interactions("cust-0001", since=T0)

    assert _ids(got) == ["int-5", "int-4", "int-3", "int-2", "int-1", "int-0"]
    assert got[0] == _record("int-5", started_at=T0 + timedelta(hours=5), reason="r5")
    assert _ids(store.customer_interactions("cust-0002", since=T0)) == ["other-1"]
    assert store.customer_interactions("cust-9999", since=T0) == []


def test_customer_interactions_since_is_inclusive(store: InteractionStore) -> None:
    _history(store)
    at = T0 + timedelta(hours=3)
    one_us = timedelta(microseconds=1)

    assert _ids(store.customer_interactions("cust-0001", since=at)) == ["int-5", "int-4", "int-3"]
    assert _ids(store.customer_interactions("cust-0001", since=at + one_us)) == ["int-5", "int-4"]
    # The same instant written in another zone selects the same rows.
    assert _ids(store.customer_interactions("cust-0001", since=at.astimezone(EST))) == [
        "int-5",
        "int-4",
        "int-3",
    ]


def test_customer_interactions_exclude_and_limit(store: InteractionStore) -> None:
    _history(store)

    assert _ids(store.customer_interactions("cust-0001", since=T0, exclude="int-4")) == [
        "int-5",
        "int-3",
        "int-2",
        "int-1",
        "int-0",
    ]
    assert _ids(store.customer_interactions("cust-0001", since=T0, limit=2)) == ["int-5", "int-4"]
    assert _ids(store.customer_interactions("cust-0001", since=T0, exclude="int-5", limit=2)) == [
        "int-4",
        "int-3",
    ]
    assert _ids(store.customer_interactions("cust-0001", since=T0, exclude="other-1")) == [
        "int-5",
        "int-4",
        "int-3",
        "int-2",
        "int-1",
        "int-0",
    ]


def test_customer_interactions_default_limit_is_50(store: InteractionStore) -> None:
    for i in range(52):
        store.upsert_interaction(_record(f"int-{i:03d}", started_at=T0 + timedelta(seconds=i)))

    got = store.customer_interactions("cust-0001", since=T0)

    assert len(got) == 50
    assert _ids(got)[:2] == ["int-051", "int-050"]
    assert _ids(got)[-1] == "int-002"


def test_customer_interactions_break_ties_by_id(store: InteractionStore) -> None:
    for interaction_id in ("int-b", "int-c", "int-a"):
        store.upsert_interaction(_record(interaction_id))

    assert _ids(store.customer_interactions("cust-0001", since=T0)) == ["int-c", "int-b", "int-a"]


def test_customer_interactions_refuse_naive_since(store: InteractionStore) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        store.customer_interactions("cust-0001", since=datetime(2025, 3, 1))


@pytest.mark.parametrize("limit", [0, -1, 501, True])
def test_customer_interactions_refuse_limit_out_of_range(
    store: InteractionStore, limit: int
) -> None:
    with pytest.raises(ValueError, match="limit must be between 1 and 500"):
        store.customer_interactions("cust-0001", since=T0, limit=limit)


def test_waiting_follow_ups_are_listed_per_customer_until_done(store: InteractionStore) -> None:
    store.record_follow_up(
        "fu-1", customer_id="c1", ticket_id="t1", status="waiting", outcome=None, at=T0
    )
    store.record_follow_up(
        "fu-2", customer_id="c1", ticket_id="t2", status="waiting", outcome=None, at=T0
    )
    store.record_follow_up(
        "fu-3", customer_id="c2", ticket_id="t3", status="waiting", outcome=None, at=T0
    )
    assert store.waiting_follow_ups("c1") == ["fu-1", "fu-2"]

    store.record_follow_up(
        "fu-1", customer_id="c1", ticket_id="t1", status="done", outcome="resolved", at=T0
    )
    # A retried "waiting" write after "done" does not reopen it.
    store.record_follow_up(
        "fu-1", customer_id="c1", ticket_id="t1", status="waiting", outcome=None, at=T0
    )

    assert store.waiting_follow_ups("c1") == ["fu-2"]
    assert store.waiting_follow_ups("c2") == ["fu-3"]
    assert store.waiting_follow_ups("nobody") == []

"""The batch store against SQLite and a real PostgreSQL: one batch per file, rejects replaced
whole, a chunk stored once, alert flags that a resumed step skips, sealed requests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from fiflow.integrations.batch_store import (
    AlertKind,
    BatchState,
    BatchStore,
    MatchRow,
    PlannedAlert,
    Reject,
)
from fiflow.integrations.codec import EncryptionCodec, KeyRing, new_key

T0 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
BATCH = "b" + "a" * 32


@pytest.fixture
def store(engine: Engine) -> BatchStore:
    return BatchStore(engine, sealer=EncryptionCodec(KeyRing.parse(new_key())))


def _register(store: BatchStore) -> bool:
    _, created = store.register(BATCH, sha256="a" * 64, source="default", fmt="csv", size=10, at=T0)
    return created


def _alert(key: str, kind: AlertKind = AlertKind.NOTICE) -> PlannedAlert:
    return PlannedAlert(
        alert_key=key, customer_id="cust-1", kind=kind, items=2, request={"merchant": "ACME"}
    )


def test_the_same_file_registers_once(store: BatchStore) -> None:
    assert _register(store) is True
    assert _register(store) is False
    batch = store.get(BATCH)
    assert batch is not None
    assert (batch.state, batch.created_at, batch.chunks_done) == (BatchState.RECEIVED, T0, 0)
    assert store.get("b" + "0" * 32) is None


def test_screening_plan_and_rejects_are_replaced_whole_on_a_retry(store: BatchStore) -> None:
    _register(store)
    for rejects in (
        [Reject(line=3, reason="x"), Reject(line=9, reason="y")],
        [Reject(line=4, reason="z")],
    ):
        store.begin_screening(
            BATCH,
            snapshot={"conditions": {}},
            rules_version="r1",
            sources_version="s1",
            rows_read=10,
            rejects=rejects,
            chunks=3,
            at=T0,
        )
    assert [(r.line, r.reason) for r in store.rejects(BATCH)] == [(4, "z")]
    batch = store.get(BATCH)
    assert batch is not None
    assert (batch.state, batch.rows_rejected, batch.chunks_total) == (BatchState.SCREENING, 1, 3)
    assert store.snapshot(BATCH) == {"conditions": {}}


def test_a_chunk_is_stored_once_and_its_alerts_start_once(
    store: BatchStore, engine: Engine
) -> None:
    _register(store)
    matches = [MatchRow(transaction_id="t1", customer_id="cust-1", rule_ids=["a", "b"],
                        alert_key="k1")]  # fmt: skip
    alerts = [_alert("k1"), _alert("t9", AlertKind.FRAUD_ALERT)]
    first = store.save_chunk(BATCH, 0, rows=5, matches=matches, alerts=alerts, at=T0)
    again = store.save_chunk(BATCH, 0, rows=99, matches=[], alerts=[], at=T0)
    assert first == again
    assert (first.rows, first.matched, first.alerts) == (5, 1, 2)
    assert [m.rule_ids for m in store.matches(BATCH)] == [["a", "b"]]

    totals = store.begin_alerting(BATCH, T0)
    assert (totals.state, totals.rows_matched, totals.alerts_planned) == (
        BatchState.ALERTING,
        1,
        2,
    )
    pending = store.pending_alerts(BATCH, 10)
    assert [(p.alert_key, p.request) for p in pending] == [
        ("k1", {"merchant": "ACME"}),
        ("t9", {"merchant": "ACME"}),
    ]
    store.mark_started(BATCH, ["k1"], T0 + timedelta(seconds=1))
    store.mark_started(BATCH, ["k1"], T0 + timedelta(seconds=5))  # the first time stays
    assert [p.alert_key for p in store.pending_alerts(BATCH, 10)] == ["t9"]
    assert store.count_pending(BATCH) == 1
    batch = store.get(BATCH)
    assert batch is not None and batch.alerts_started == 1
    store.mark_started(BATCH, ["t9"], T0)
    done = store.finish(BATCH, T0)
    assert (done.state, done.alerts_started, done.chunks_done) == (BatchState.COMPLETED, 2, 1)
    # The request is sealed at rest: the merchant is not in the table in clear.
    with engine.connect() as conn:
        stored = conn.scalar(sa.text("SELECT request FROM feed_batch_alerts LIMIT 1"))
    assert "ACME" not in str(stored)


def test_a_failed_file_says_why(store: BatchStore) -> None:
    _register(store)
    store.fail(BATCH, "the file lacks column(s): amount", T0)
    batch = store.get(BATCH)
    assert batch is not None
    assert (batch.state, batch.error) == (BatchState.FAILED, "the file lacks column(s): amount")
    assert batch.state.finished

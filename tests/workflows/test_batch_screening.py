"""BatchScreeningWorkflow on the time-skipping server: the real activities over SQLite and a
batch directory; the alert workflows are stand-ins that record what they were started with."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from fiflow.domain.feeds.batches import BatchResult, SweepInbox, SweepResult
from fiflow.domain.feeds.preferences import AlertPreferences
from fiflow.integrations.batch_files import work_dir
from fiflow.integrations.batch_intake import batch_workflow_id
from fiflow.integrations.batch_store import BatchState
from fiflow.workflows.batch_screening import BatchInboxSweepWorkflow
from tests.workflows.batch_harness import (
    STAND_IN_TYPES,
    T0,
    BatchHarness,
    batch_harness,
    batch_settings,
    csv_bytes,
    txn,
)


@pytest.fixture
async def bh(
    time_skipping_env: WorkflowEnvironment,
    task_queue: str,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> AsyncIterator[BatchHarness]:
    request.node.replay_skip_types = STAND_IN_TYPES
    harness = batch_harness(time_skipping_env.client, batch_settings(tmp_path, task_queue))
    yield harness


def scenario_rows() -> list[dict[str, str]]:
    """Good and bad rows; the line of each row is its index + 2 (line 1 is the header)."""
    rows = [
        # line 2: cust-C's first decline (the window's first row, far from its third)
        txn("c-1", "cust-C", status="declined", minutes=0, card="1111"),
        txn("a-1", "cust-A", amount="600.00", minutes=1),  # big purchase
        txn("a-2", "cust-A", amount="750.50", minutes=2),  # big purchase
        txn("bad-amount", "cust-D", amount="12,50"),  # line 5: rejected
        txn("d-1", "cust-D"),
        txn("e-1", "cust-E"),
        txn("b-1", "cust-B", amount="6000.00", card_present="false", minutes=3),  # fraud
        # line 9: the second decline
        txn("c-2", "cust-C", status="declined", minutes=5, card="1111"),
        txn("bad-currency", "cust-E", currency="usd"),  # line 10: rejected
        txn("f-1", "cust-F"),
        txn("a-3", "cust-A", amount="900.00", minutes=4),  # big purchase
        txn("a-4", "cust-A", amount="10.00", minutes=5),  # no match
        txn("bad-customer", ""),  # line 14: rejected
        txn("b-2", "cust-B", amount="510.00", minutes=6),  # big purchase: a single notice
        txn("g-1", "cust-G"),
        txn("bad-time", "cust-G", occurred_at="2026-11-01 10:00:00"),  # line 17: no offset
        txn("h-1", "cust-H"),
        txn("a-1", "cust-H"),  # line 19: a repeated transaction id
        txn("g-2", "cust-G", minutes=30),
        # line 21: the third decline, 14 minutes after the first
        txn("c-3", "cust-C", status="declined", minutes=14, card="1111"),
    ]
    return rows


async def test_a_file_with_good_and_bad_rows_is_counted_exactly_and_digested(
    bh: BatchHarness,
) -> None:
    rows = scenario_rows()
    async with bh.worker():
        accepted = await bh.submit(csv_bytes(rows))
        handle = bh.client.get_workflow_handle(batch_workflow_id(accepted.batch.batch_id))
        result = BatchResult.model_validate(await handle.result())

    assert (result.state, result.rows_read, result.rows_rejected) == ("completed", 20, 5)
    # a-1..a-3, b-1, b-2 and c-3 (the third decline in 15 minutes, across chunks of the file)
    assert (result.rows_matched, result.alerts_planned, result.alerts_started) == (6, 4, 4)
    assert [(r.line, r.reason) for r in bh.store.rejects(accepted.batch.batch_id)] == [
        (5, "amount is not a decimal number with at most 4 decimal places"),
        (10, "currency is not an ISO 4217 code in capitals"),
        (14, "customer_id is missing"),
        (17, "occurred_at is not a time with an offset"),
        (19, "transaction_id repeats an earlier row"),
    ]

    # One fraud alert per transaction, keyed by the transaction (as on the stream).
    assert [a.request.source_event_id for a in bh.started.fraud] == ["b-1"]
    notices = {n.request.customer_id: n.request for n in bh.started.notices}
    assert sorted(notices) == ["cust-A", "cust-B", "cust-C"]
    # cust-A's three big purchases: one digest message, in time order.
    digest = notices["cust-A"]
    assert digest.alert_type == "digest"
    assert [i.transaction_id for i in digest.items] == ["a-1", "a-2", "a-3"]
    assert digest.source_event_id == f"bd:{accepted.batch.batch_id}:cust-A:0"
    # One notice on its own keeps the transaction's key; the fraud alert's transaction is not
    # told again as a notice.
    assert notices["cust-B"].source_event_id == "b-2"
    assert (notices["cust-C"].source_event_id, notices["cust-C"].alert_type) == (
        "c-3",
        "repeated_declines",
    )
    assert notices["cust-C"].channel == "sms"

    batch = bh.store.get(accepted.batch.batch_id)
    assert batch is not None and batch.state is BatchState.COMPLETED
    assert batch.chunks_total is not None and batch.chunks_total >= 3
    assert batch.chunks_done == batch.chunks_total
    matched = {m.transaction_id: m for m in bh.store.matches(accepted.batch.batch_id)}
    assert sorted(matched) == ["a-1", "a-2", "a-3", "b-1", "b-2", "c-3"]
    assert matched["a-2"].alert_key == digest.source_event_id
    assert matched["b-1"].rule_ids == ["large_card_not_present"]
    # The chunk files are gone; the stored file stays.
    assert not work_dir(bh.settings.batch_dir, accepted.batch.batch_id).exists()
    assert (bh.settings.batch_dir / f"{accepted.batch.sha256}.csv").exists()


async def test_the_same_file_twice_is_one_run_and_one_set_of_alerts(bh: BatchHarness) -> None:
    data = csv_bytes(
        [
            txn("x-1", "cust-X", amount="7000.00", card_present="false"),
            txn("x-2", "cust-X", amount="800.00", minutes=1),
            txn("y-1", "cust-Y", amount="800.00", minutes=2),
        ]
    )
    async with bh.worker():
        first = await bh.submit(data)
        again = await bh.submit(data)  # while the first run may still be going
        assert (first.duplicate, again.duplicate) == (False, True)
        assert again.batch.batch_id == first.batch.batch_id
        handle = bh.client.get_workflow_handle(batch_workflow_id(first.batch.batch_id))
        result = BatchResult.model_validate(await handle.result())
        first_run = (await handle.describe()).run_id

        late = await bh.submit(data)  # after it finished
        assert late.duplicate and late.batch.state is BatchState.COMPLETED
        assert (await handle.describe()).run_id == first_run

    assert (result.rows_read, result.alerts_started) == (3, 3)
    assert sorted(bh.started.runs()) == ["x-1", "x-2", "y-1"]


V2_COLUMNS = {
    "transaction_id": "TXN_ID",
    "customer_id": "CUST_NO",
    "card_last4": "PAN_LAST4",
    "amount": "AMT",
    "currency": "CCY",
    "merchant": "MERCHANT_NAME",
    "mcc": "MCC",
    "country": "COUNTRY",
    "card_present": "CARD_PRESENT",
    "status": "AUTH_RESULT",
    "occurred_at": "AUTH_TIME",
}


def card_system_v2_file() -> bytes:
    """The card system's export: its own column names, codes, `;` and local times."""
    header = ";".join(V2_COLUMNS.values())
    lines = [
        header,
        "v2-1;cust-V;4242;6500.00;USD;Web Shop;5967;US;N;A;2026-11-01 09:30:00",
        "v2-2;cust-V;4242;12.00;USD;Cafe;5814;US;P;A;2026-11-01 09:31:00",
        "v2-3;cust-W;1234;1.00;USD;Cafe;5814;US;maybe;A;2026-11-01 09:32:00",
    ]
    return ("\n".join(lines) + "\n").encode()


async def test_the_inbox_sweep_takes_each_file_in_once_by_its_source(bh: BatchHarness) -> None:
    inbox = bh.settings.batch_inbox
    (inbox / "card_system_v2").mkdir(parents=True)
    (inbox / "nobody").mkdir()
    default_file = csv_bytes([txn("in-1", "cust-I", amount="900.00")])
    (inbox / "today.csv").write_bytes(default_file)
    (inbox / "card_system_v2" / "export.csv").write_bytes(card_system_v2_file())
    (inbox / "notes.txt").write_text("not a batch")
    (inbox / "nobody" / "x.csv").write_bytes(default_file)

    async with bh.worker():
        swept = SweepResult.model_validate(
            await bh.client.execute_workflow(
                BatchInboxSweepWorkflow.run,
                SweepInbox(),
                id=f"batch-inbox-{bh.settings.task_queue}",
                task_queue=bh.settings.task_queue,
            )
        )
        assert (len(swept.batch_ids), swept.set_aside) == (2, 2)
        results = [
            BatchResult.model_validate(
                await bh.client.get_workflow_handle(batch_workflow_id(b)).result()
            )
            for b in swept.batch_ids
        ]

    # Taken files left the inbox; the others wait beside it for an operator.
    assert sorted(p.name for p in inbox.rglob("*") if p.is_file()) == ["notes.txt", "x.csv"]
    assert {p.parent.name for p in inbox.rglob("*") if p.is_file()} == {"set-aside"}
    by_source = {bh.store.get(r.batch_id).source: r for r in results}  # type: ignore[union-attr]
    v2 = by_source["card_system_v2"]
    assert (v2.rows_read, v2.rows_rejected, v2.rows_matched, v2.alerts_started) == (3, 1, 1, 1)
    assert (by_source["default"].rows_matched, by_source["default"].alerts_started) == (1, 1)
    [fraud] = bh.started.fraud
    assert fraud.request.source_event_id == "v2-1"
    # 09:30 in New York is 14:30 UTC on that day (daylight saving time ended that morning).
    assert fraud.request.transaction.occurred_at.isoformat() == "2026-11-01T14:30:00+00:00"
    assert [r.reason for r in bh.store.rejects(v2.batch_id)] == [
        "card_present is not true or false"
    ]


async def test_a_customers_own_preferences_are_screened_and_digested_with_the_conditions(
    bh: BatchHarness,
) -> None:
    prefs = AlertPreferences.model_validate(
        {"preferences": [{"kind": "amount_over", "amount": "100", "channel": "push"}]}
    )
    bh.preferences.put("cust-P", prefs, expected_version=0, at=T0)
    rows = [
        txn("p-1", "cust-P", amount="150.00"),  # only the preference
        txn("p-2", "cust-P", amount="800.00", minutes=1),  # the preference and big_purchase
        txn("q-1", "cust-Q", amount="150.00"),  # no preference stored, no FI default here
    ]
    async with bh.worker():
        accepted = await bh.submit(csv_bytes(rows))
        handle = bh.client.get_workflow_handle(batch_workflow_id(accepted.batch.batch_id))
        result = BatchResult.model_validate(await handle.result())

    assert (result.rows_matched, result.alerts_started) == (2, 1)
    [digest] = [n.request for n in bh.started.notices]
    assert [(i.transaction_id, i.reasons) for i in digest.items] == [
        ("p-1", ["pref_amount_over"]),
        ("p-2", ["big_purchase", "pref_amount_over"]),
    ]
    assert digest.channel == "push"  # the first match naming a channel
    matched = {m.transaction_id: m.rule_ids for m in bh.store.matches(accepted.batch.batch_id)}
    assert matched == {"p-1": ["amount_over"], "p-2": ["big_purchase", "amount_over"]}

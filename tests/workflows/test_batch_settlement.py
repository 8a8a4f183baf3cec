"""Settlement (balance) files through BatchScreeningWorkflow on the time-skipping server: the
real activities over SQLite and a batch directory, the alert workflows as stand-ins."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from fiflow.domain.feeds.batches import BatchResult
from fiflow.domain.feeds.matches import NoticeItemKind, NoticeRequest
from fiflow.domain.feeds.preferences import AlertPreferences
from fiflow.domain.notices import notice_text
from fiflow.domain.rules import NoticeRules
from fiflow.integrations.batch_intake import batch_workflow_id
from fiflow.integrations.rules_store import RuleStore
from tests.workflows.batch_harness import (
    CONDITIONS,
    STAND_IN_TYPES,
    T0,
    BatchHarness,
    batch_harness,
    batch_settings,
)

BALANCE_COLUMNS = "customer_id,account_id,balance,currency,as_of"
AS_OF = "2026-01-05T23:59:00Z"
NEXT_DAY = "2026-01-06T23:59:00Z"
# The FI's default for customers who stored nothing: a balance under 50.
DEFAULTS = """
default_preferences:
  - kind: balance_below
    amount: "50"
"""


@pytest.fixture
async def bh(
    time_skipping_env: WorkflowEnvironment,
    task_queue: str,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> AsyncIterator[BatchHarness]:
    request.node.replay_skip_types = STAND_IN_TYPES
    settings = batch_settings(tmp_path, task_queue)
    assert settings.rules_dir is not None
    (settings.rules_dir / "conditions.yaml").write_text(CONDITIONS + DEFAULTS)
    harness = batch_harness(time_skipping_env.client, settings)
    put = harness.preferences.put
    put("cust-A", _below("100", channel="sms"), expected_version=0, at=T0)
    put("cust-C", _below("100", currency="EUR"), expected_version=0, at=T0)
    put("cust-N", AlertPreferences(preferences=[]), expected_version=0, at=T0)
    yield harness


def _below(amount: str, **more: str) -> AlertPreferences:
    entry = {"kind": "balance_below", "amount": amount, **more}
    return AlertPreferences.model_validate({"preferences": [entry]})


def settlement_csv(lines: list[str]) -> bytes:
    """A settlement file in the schema's own column names (line 1 is the header)."""
    return ("\n".join([BALANCE_COLUMNS, *lines]) + "\n").encode()


SCENARIO = [
    f"cust-A,acc-77-0123,84.12,USD,{AS_OF}",  # line 2: below cust-A's 100
    f"cust-A,acc-77-0456,500.00,USD,{AS_OF}",  # line 3: not below
    f"cust-B,acc-88-0001,20.00,USD,{AS_OF}",  # line 4: below the FI's default 50
    f"cust-B,acc-88-0002,12.5.0,USD,{AS_OF}",  # line 5: rejected (balance)
    f"cust-C,acc-99-0001,10.00,USD,{AS_OF}",  # line 6: cust-C watches EUR accounts only
    f"cust-C,acc-99-0002,99.99,EUR,{AS_OF}",  # line 7: below, in EUR
    f"cust-C,acc-99-0003,1.00,eur,{AS_OF}",  # line 8: rejected (currency)
    f"cust-A,acc-77-0123,84.12,USD,{AS_OF}",  # line 9: rejected (the same balance again)
    f"cust-A,,1.00,USD,{AS_OF}",  # line 10: rejected (no account)
    "cust-A,acc-77-0789,1.00,USD,2026-01-05 23:59:00",  # line 11: rejected (no offset)
    f"cust-A,acc-77-0123,-3.00,USD,{NEXT_DAY}",  # line 12: the next day's balance, below
    f"cust-N,acc-11-0001,0.00,USD,{AS_OF}",  # line 13: preferences off
    f"cust-B,acc-88-0003,50.00,USD,{AS_OF}",  # line 14: not strictly below 50
]


async def _run(bh: BatchHarness, data: bytes) -> tuple[str, BatchResult]:
    accepted = await bh.submit(data, source="settlement")
    handle = bh.client.get_workflow_handle(batch_workflow_id(accepted.batch.batch_id))
    return accepted.batch.batch_id, BatchResult.model_validate(await handle.result())


async def test_a_settlement_file_is_counted_exactly_and_told_one_notice_per_balance(
    bh: BatchHarness,
) -> None:
    async with bh.worker():
        batch_id, result = await _run(bh, settlement_csv(SCENARIO))

    assert (result.state, result.rows_read, result.rows_rejected) == ("completed", 13, 5)
    assert (result.rows_matched, result.alerts_planned, result.alerts_started) == (4, 4, 4)
    assert [(r.line, r.reason) for r in bh.store.rejects(batch_id)] == [
        (5, "balance is not a decimal number with at most 4 decimal places"),
        (8, "currency is not an ISO 4217 code in capitals"),
        (9, "account_id and as_of repeat an earlier row"),
        (10, "account_id is missing"),
        (11, "as_of is not a time with an offset"),
    ]
    assert bh.started.fraud == []
    notices = [n.request for n in bh.started.notices]
    # One notice per account and as_of: never a digest, even for cust-A's two.
    told = sorted(
        (n.customer_id, i.account_last4, i.amount, i.threshold, i.occurred_at.date().isoformat())
        for n in notices
        for i in n.items
    )
    assert told == [
        ("cust-A", "0123", "-3.00", "100", "2026-01-06"),
        ("cust-A", "0123", "84.12", "100", "2026-01-05"),
        ("cust-B", "0001", "20.00", "50", "2026-01-05"),
        ("cust-C", "0002", "99.99", "100", "2026-01-05"),
    ]
    assert all(len(n.items) == 1 and n.items[0].kind is NoticeItemKind.BALANCE for n in notices)
    assert all(n.alert_type == "pref_balance_below" for n in notices)
    assert len({n.source_event_id for n in notices}) == 4
    # No account reference in the keys (a keyed hash of customer, account and as_of).
    assert all(n.source_event_id.startswith("bal-") for n in notices)
    assert not any("acc-" in n.source_event_id for n in notices)
    assert {n.customer_id: n.channel for n in notices} == {
        "cust-A": "sms",
        "cust-B": None,
        "cust-C": None,
    }
    matched = bh.store.matches(batch_id)
    assert sorted(m.alert_key or "" for m in matched) == sorted(n.source_event_id for n in notices)
    assert {m.rule_ids[0] for m in matched} == {"balance_below"}

    # What the customer reads, with the shipped notice texts.
    rules = RuleStore(None).alert_rules()
    notice_rules = NoticeRules(version=rules.version, fi_name=rules.fi_name, policy=rules.notices)
    [first] = [n for n in notices if n.items[0].amount == "84.12"]
    assert notice_text(notice_rules, first) == (
        "Fiflow Bank: the balance of account ending 0123 is $84.12 "
        "(below your $100.00 alert). No reply needed."
    )
    [euro] = [n for n in notices if n.customer_id == "cust-C"]
    assert "is €99.99 (below your €100.00 alert)" in notice_text(notice_rules, euro)


async def test_the_same_balance_twice_texts_once(bh: BatchHarness) -> None:
    data = settlement_csv(SCENARIO[:3])
    async with bh.worker():
        first_id, first = await _run(bh, data)
        again = await bh.submit(data, source="settlement")
        assert again.duplicate and again.batch.batch_id == first_id
        # Another file holding the same balance (and one more): a new batch, but the same
        # balance is the same notice.
        _, other = await _run(bh, settlement_csv([SCENARIO[0], SCENARIO[2]]))

    assert (first.alerts_started, other.alerts_planned, other.alerts_started) == (2, 2, 2)
    runs = bh.started.runs()
    assert len(runs) == 2 and len(set(runs)) == 2  # cust-A's 84.12 and cust-B's 20.00, once each


def test_a_balance_notice_from_a_rule_file_without_the_balance_text_reads_the_shipped_one() -> None:
    rules = RuleStore(None).alert_rules()
    templates = {k: v for k, v in rules.notices.templates.items() if k != "balance_sms"}
    policy = rules.notices.model_copy(update={"templates": templates})
    old = NoticeRules.model_validate(
        {"version": "old", "fi_name": "Old Bank", "policy": policy.model_dump(mode="json")}
    )
    req = NoticeRequest.model_validate(
        {
            "source_event_id": "bal-1",
            "customer_id": "cust-A",
            "alert_type": "pref_balance_below",
            "origin": "batch",
            "items": [
                {
                    "kind": "balance",
                    "transaction_id": "bal-1",
                    "reasons": ["pref_balance_below"],
                    "amount": "1234.5",
                    "currency": "USD",
                    "occurred_at": "2026-01-05T23:59:00Z",
                    "account_last4": "0123",
                    "threshold": "2000",
                }
            ],
        }
    )
    assert notice_text(old, req) == (
        "Old Bank: the balance of account ending 0123 is $1,234.50 "
        "(below your $2,000.00 alert). No reply needed."
    )

"""A transaction file through the whole stack: `fiflow feed batch` uploads it to the API, the
workers screen it, and the customer's phone gets one fraud alert and one digest; the same file
again is the same batch and texts nothing more."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from tests.e2e.conftest import CustomerPool
from tests.e2e.stack import RunningStack
from tests.e2e.test_alerts_e2e import outbox
from tests.e2e.waiting import eventually
from tests.workflows.batch_harness import csv_bytes, txn


def fiflow(stack: RunningStack, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "FIFLOW_API_URL": stack.api}
    return subprocess.run(
        [sys.executable, "-m", "fiflow.starters.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


async def test_a_batch_file_alerts_its_customer_once_and_digests_the_notices(
    stack: RunningStack, pool: CustomerPool, http: httpx.AsyncClient, tmp_path: Path
) -> None:
    customer = pool.take_awake()
    card = customer["cards"][0]["last4"]
    run = uuid.uuid4().hex[:8]
    now = datetime.now(UTC) - timedelta(minutes=30)

    def row(suffix: str, minutes: int, **values: str) -> dict[str, str]:
        base = txn(f"e2e-{run}-{suffix}", customer["customer_id"], card=card, **values)
        base["occurred_at"] = (now + timedelta(minutes=minutes)).isoformat()
        return base

    rows = [
        row("fraud", 0, amount="6200.00", card_present="false", merchant="Batch Web Shop"),
        row("casino-1", 1, country="MT", mcc="7995", merchant="Lucky Casino"),
        row("casino-2", 2, country="MT", mcc="7995", merchant="Lucky Casino"),
        row("bad", 3, amount="lots"),
    ]
    path = tmp_path / "transactions.csv"
    path.write_bytes(csv_bytes(rows))

    done = fiflow(stack, "feed", "batch", str(path))
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads(done.stdout)
    counts = [result[k] for k in ("rows_read", "rows_rejected", "rows_matched", "alerts_started")]
    assert (result["state"], counts) == ("completed", [4, 1, 3, 2])
    assert result["rejected_rows"] == [
        {"line": 5, "reason": "amount is not a decimal number with at most 4 decimal places"}
    ]

    texts = await eventually(
        lambda: outbox(http, stack, customer["phone"]), lambda m: len(m) >= 2, within=45
    )
    bodies = [t["body"] for t in texts]
    assert sum("Batch Web Shop" in b for b in bodies) == 1  # the fraud alert
    assert sum("Lucky Casino" in b for b in bodies) == 1  # one digest for both casino rows

    again = fiflow(stack, "feed", "batch", str(path))
    assert again.returncode == 0, again.stdout + again.stderr
    assert json.loads(again.stdout)["batch_id"] == result["batch_id"]
    assert "the same file came before" in again.stderr
    assert len(await outbox(http, stack, customer["phone"])) == len(texts)


async def test_a_settlement_file_texts_each_low_balance_once(
    stack: RunningStack, pool: CustomerPool, http: httpx.AsyncClient, tmp_path: Path
) -> None:
    customer = pool.take_awake()
    account = customer["accounts"][0]
    as_of = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    header = "customer_id,account_id,balance,currency,as_of"
    low = f"{customer['customer_id']},{account['account_id']},42.50,{account['currency']},{as_of}"
    bad = f"{customer['customer_id']},{account['account_id']},lots,{account['currency']},{as_of}"
    path = tmp_path / "settlement.csv"
    path.write_text("\n".join([header, low, bad]) + "\n")

    # No preferences stored: the FI's default balance_below 100 applies.
    done = fiflow(stack, "feed", "batch", str(path), "--source", "settlement")
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads(done.stdout)
    counts = [result[k] for k in ("rows_read", "rows_rejected", "rows_matched", "alerts_started")]
    assert (result["state"], counts) == ("completed", [2, 1, 1, 1])

    digits = "".join(ch for ch in account["account_id"] if ch.isdigit())[-4:]
    wanted = f"the balance of account ending {digits} is"
    texts = await eventually(
        lambda: outbox(http, stack, customer["phone"]),
        lambda m: any(wanted in t["body"] for t in m),
        within=45,
    )
    assert sum(wanted in t["body"] for t in texts) == 1

    # The same balance in another file is the same notice: nothing more is texted.
    other = tmp_path / "settlement-again.csv"
    other.write_text("\n".join([header, low]) + "\n")
    again = fiflow(stack, "feed", "batch", str(other), "--source", "settlement")
    assert again.returncode == 0, again.stdout + again.stderr
    assert json.loads(again.stdout)["alerts_started"] == 1
    assert len(await outbox(http, stack, customer["phone"])) == len(texts)

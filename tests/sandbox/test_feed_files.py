"""The sandbox's generated feed files: repeatable, valid, and alerting where they say."""

from __future__ import annotations

from pathlib import Path

import httpx
import polars as pl
import yaml

from fiflow.domain.feeds.conditions import parse_condition_rule_set
from fiflow.domain.feeds.transactions import Transaction
from fiflow.integrations.screening import screen

SHIPPED = Path(__file__).resolve().parents[2] / "fiflow" / "rules" / "conditions.yaml"


def _shipped_rules():  # type: ignore[no-untyped-def]
    return parse_condition_rule_set(yaml.safe_load(SHIPPED.read_text())).compiled()


async def test_the_same_request_writes_the_same_bytes(sandbox: httpx.AsyncClient) -> None:
    body = {"rows": 500, "format": "csv", "seed": 11}
    first = (await sandbox.post("/__sandbox/feeds/files", json=body)).json()
    second = (await sandbox.post("/__sandbox/feeds/files", json=body)).json()
    other = (await sandbox.post("/__sandbox/feeds/files", json={**body, "seed": 12})).json()
    assert first["path"] != second["path"]
    assert first["sha256"] == second["sha256"]
    assert other["sha256"] != first["sha256"]
    assert first["rows"] == 500


async def test_rows_are_valid_transactions_of_seeded_cards(sandbox: httpx.AsyncClient) -> None:
    written = (
        await sandbox.post(
            "/__sandbox/feeds/files", json={"rows": 2000, "format": "parquet", "seed": 3}
        )
    ).json()
    frame = pl.read_parquet(written["path"])
    customers = (await sandbox.get("/__sandbox/customers")).json()
    cards = {(c["customer_id"], card["last4"]) for c in customers for card in c["cards"]}
    rows = frame.with_columns(pl.col("occurred_at").dt.to_string("iso")).to_dicts()
    parsed = [Transaction.model_validate(row) for row in rows]
    assert len({t.transaction_id for t in parsed}) == 2000
    assert all((t.customer_id, t.card_last4) in cards for t in parsed)
    # The canaries hold planted personal data for one test; no feed ever names them.
    assert not any(t.customer_id.startswith("cust-canary") for t in parsed)
    assert {t.status.value for t in parsed} == {"approved", "declined"}
    assert any(not t.card_present for t in parsed) and any(t.country != "US" for t in parsed)


async def test_alerting_rows_are_exactly_the_large_card_not_present_ones(
    sandbox: httpx.AsyncClient,
) -> None:
    written = (
        await sandbox.post(
            "/__sandbox/feeds/files",
            json={"rows": 5000, "format": "csv", "seed": 5, "alert_share": 0.02},
        )
    ).json()
    frame = pl.read_csv(written["path"], schema_overrides={"amount": pl.String}).with_columns(
        pl.col("occurred_at").str.to_datetime(time_zone="UTC"),
        pl.col("card_last4").cast(pl.String).str.pad_start(4, "0"),
        pl.col("mcc").cast(pl.String).str.pad_start(4, "0"),
    )
    matches = screen(frame, _shipped_rules())
    large = set(
        matches.filter(pl.col("condition_id") == "large_card_not_present")["transaction_id"]
    )
    assert written["alerting"] == len(written["alerting_ids"]) > 50
    assert large == set(written["alerting_ids"])


async def test_a_settlement_file_has_one_balance_per_account(sandbox: httpx.AsyncClient) -> None:
    written = (
        await sandbox.post("/__sandbox/feeds/files", json={"kind": "settlement", "seed": 2})
    ).json()
    frame = pl.read_csv(written["path"], schema_overrides={"balance": pl.String})
    customers = (await sandbox.get("/__sandbox/customers")).json()
    accounts = {a["account_id"] for c in customers for a in c["accounts"]}
    assert set(frame["account_id"]) == accounts
    assert frame.height == len(accounts) == written["rows"]
    assert frame["balance"].str.contains(r"^\d+\.\d{2}$").all()


async def test_bad_requests_are_refused(sandbox: httpx.AsyncClient) -> None:
    too_many = await sandbox.post("/__sandbox/feeds/files", json={"rows": 0})
    assert too_many.status_code == 422
    bad_share = await sandbox.post("/__sandbox/feeds/stream", json={"alert_share": 2})
    assert bad_share.status_code == 422
    huge = await sandbox.post("/__sandbox/feeds/stream", json={"rate": 50000, "seconds": 3600})
    assert huge.status_code == 422
    assert huge.json()["code"] == "too_many"
    missing = await sandbox.get("/__sandbox/feeds/stream/nope")
    assert missing.status_code == 404

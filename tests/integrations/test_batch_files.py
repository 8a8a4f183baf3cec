"""Reading batch files: the column mapping, malformed rows with their lines and reasons, Parquet,
the content-addressed store, and chunks that keep each customer whole."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from fiflow.domain.rules import RuleSetError
from fiflow.integrations.batch_files import (
    BatchFileError,
    FeedSources,
    FileFormat,
    SourceMapping,
    TooLarge,
    load_feed_sources,
    partition,
    read_transactions,
    store_stream,
)
from tests.workflows.batch_harness import csv_bytes, txn

DEFAULT = SourceMapping()


def _read(tmp_path: Path, data: bytes, mapping: SourceMapping = DEFAULT) -> tuple:
    path = tmp_path / "f.csv"
    path.write_bytes(data)
    read = read_transactions(path, FileFormat.CSV, mapping)
    return read.valid, [(line, reason) for line, reason in read.rejects.iter_rows()]


def test_the_shipped_sources_are_valid_and_an_unknown_one_is_named(tmp_path: Path) -> None:
    sources = load_feed_sources(None)
    assert {"default", "card_system_v2"} <= set(sources.sources)
    with pytest.raises(RuleSetError, match="unknown source 'nope'; known: card_system_v2"):
        sources.source("nope")
    # The FI's own directory wins over the packaged file.
    (tmp_path / "feed_sources.yaml").write_text(
        "name: feed_sources\nversion: v9\nsources:\n  bank_x: {}\n"
    )
    assert set(load_feed_sources(tmp_path).sources) == {"bank_x"}


@pytest.mark.parametrize(
    ("mapping", "problem"),
    [
        ({"columns": {"X": "amout"}}, "unknown field"),
        ({"columns": {"X": "amount", "Y": "amount"}}, "several columns map onto: amount"),
        ({"timezone": "Mars/Base"}, "unknown time zone"),
    ],
)
def test_a_bad_mapping_is_refused(mapping: dict, problem: str) -> None:
    data = {"name": "feed_sources", "version": "1", "sources": {"s": mapping}}
    with pytest.raises(ValueError, match=problem):
        FeedSources.model_validate(data)


def test_every_malformed_row_is_kept_with_its_line_and_all_its_reasons(tmp_path: Path) -> None:
    rows = [
        txn("ok-1", "cust-1"),
        txn("t/2", "cust-1", card="42", amount="1.23456", country="usa", mcc="59"),
        txn("t-3", "cust-1", card_present="perhaps", status="pending", merchant=""),
        txn("t-4", "cust-1", amount="100000000000000"),
        txn("t-5", "cust-1", occurred_at="yesterday"),
        txn("ok-2", "cust-2", amount="-12.5", occurred_at="2026-11-01T10:00:00Z"),
    ]
    valid, rejects = _read(tmp_path, csv_bytes(rows))
    assert rejects == [
        (3, "transaction_id is not an id of A-Z a-z 0-9 . _ : - (at most 64); "
            "card_last4 is not four digits; mcc is not four digits; "
            "country is not an ISO 3166 alpha-2 code in capitals; "
            "amount is not a decimal number with at most 4 decimal places"),
        (4, "merchant is missing; status is not approved or declined; "
            "card_present is not true or false"),
        (5, "amount is not a decimal number with at most 4 decimal places"),
        (6, "occurred_at is not a time with an offset"),
    ]  # fmt: skip
    assert valid["transaction_id"].to_list() == ["ok-1", "ok-2"]
    assert valid["amount"].to_list() == ["20.00", "-12.5"]
    assert valid["occurred_at"].to_list()[1] == datetime(2026, 11, 1, 10, 0, tzinfo=UTC)
    # Reasons name fields, never values.
    assert not any("usa" in reason or "perhaps" in reason for _, reason in rejects)


def test_a_mapping_renames_columns_translates_codes_and_reads_local_times(
    tmp_path: Path,
) -> None:
    mapping = load_feed_sources(None).source("card_system_v2")
    header = (
        "TXN_ID;CUST_NO;PAN_LAST4;AMT;CCY;MERCHANT_NAME;MCC;COUNTRY;CARD_PRESENT;AUTH_RESULT;"
        "AUTH_TIME;EXTRA"
    )
    line = "v-1;cust-9;4242;10.00;EUR;Shop;5411;DE;P;D;2026-07-01 12:00:00;ignored"
    valid, rejects = _read(tmp_path, f"{header}\n{line}\n".encode(), mapping)
    assert rejects == []
    row = valid.drop("line").row(0, named=True)
    assert row["card_present"] is True and row["status"] == "declined"
    assert row["occurred_at"] == datetime(2026, 7, 1, 16, 0, tzinfo=UTC)  # EDT is UTC-4
    assert "EXTRA" not in valid.columns


def test_a_file_without_a_required_column_is_unreadable_as_a_whole(tmp_path: Path) -> None:
    data = csv_bytes([txn("t-1", "cust-1")], columns=("transaction_id", "customer_id"))
    with pytest.raises(BatchFileError, match="lacks column"):
        _read(tmp_path, data)


def test_parquet_with_typed_columns(tmp_path: Path) -> None:
    frame = pl.DataFrame(
        {
            "transaction_id": ["p-1", "p-2"],
            "customer_id": ["cust-1", "cust-1"],
            "card_last4": ["4242", "4242"],
            "amount": ["5000.00", "x"],
            "currency": ["USD", "USD"],
            "merchant": ["Shop", "Shop"],
            "mcc": ["5411", "5411"],
            "country": ["US", "US"],
            "card_present": [False, True],
            "status": ["approved", "approved"],
            "occurred_at": [datetime(2026, 11, 1, 9, tzinfo=UTC)] * 2,
        }
    )
    path = tmp_path / "f.parquet"
    frame.write_parquet(path)
    read = read_transactions(path, FileFormat.PARQUET, DEFAULT)
    assert read.valid["transaction_id"].to_list() == ["p-1"]
    assert read.valid["card_present"].to_list() == [False]
    assert read.rejects.rows() == [
        (2, "amount is not a decimal number with at most 4 decimal places")
    ]


def test_the_store_names_a_file_by_its_checksum_and_keeps_one_copy(tmp_path: Path) -> None:
    first = store_stream(tmp_path, [b"a,b\n", b"1,2\n"], FileFormat.CSV)
    second = store_stream(tmp_path, [b"a,b\n1,2\n"], FileFormat.CSV)
    assert first == second and first.path.read_bytes() == b"a,b\n1,2\n"
    assert first.batch_id == "b" + first.sha256[:32]
    assert [p.name for p in tmp_path.iterdir()] == [first.path.name]
    with pytest.raises(TooLarge):
        store_stream(tmp_path, [b"x" * 10], FileFormat.CSV, max_bytes=5)
    assert [p.name for p in tmp_path.iterdir()] == [first.path.name]


def test_chunks_keep_each_customer_whole(tmp_path: Path) -> None:
    rows = [txn(f"t-{n}", f"cust-{n % 7}", minutes=n) for n in range(50)]
    valid, _ = _read(tmp_path, csv_bytes(rows))
    chunks = dict(partition(valid, 4))
    assert sum(c.height for c in chunks.values()) == 50
    owners = [set(c["customer_id"].to_list()) for c in chunks.values()]
    assert all(not (a & b) for i, a in enumerate(owners) for b in owners[i + 1 :])
    assert all(owners)

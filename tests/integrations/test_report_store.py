"""Credit reports against SQLite and a real PostgreSQL: schema, write-once saves, paging."""

from __future__ import annotations

import base64
import json
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta, timezone
from types import SimpleNamespace
from typing import Any, cast

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from pydantic import ValidationError
from sqlalchemy.engine import Engine

# The feed-batch tables join the shared metadata when their store is imported: import it so
# the migrations-vs-tables check sees every table whichever test runs first.
import fiflow.integrations.batch_store  # noqa: F401
from fiflow.integrations.codec import EncryptionCodec, KeyRing, KeyRingError, new_key
from fiflow.integrations.database import (
    create_db_engine,
    credit_reports,
    current_revision,
    head_revision,
    metadata,
    upgrade_database,
)
from fiflow.integrations.reports import (
    CreditReportStore,
    InvalidCursor,
    ReportPage,
    StoredReport,
)

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)

NESTED_REPORT: dict[str, Any] = {
    "applicant": {"name": "Zoë Ångström-Ñúñez", "city": "Zürich", "note": "信用 ✓ 🏦"},
    "bureau": {"score": 712, "utilisation": 0.375, "tradelines": [1, 2.5, -3, 0]},
    "checks": [
        {"rule": "dti_max", "passed": True, "limit": 0.43, "actual": 0.31},
        {"rule": "bankruptcy", "passed": False, "detail": None},
    ],
    "offer": {"amount": 25000, "rate": 6.9, "term_months": 60, "fees": []},
    "big": 12345678901234567,
    "empty": {},
}


@pytest.fixture
def store(engine: Engine) -> CreditReportStore:
    return CreditReportStore(engine)


def _report(
    application_id: str = "app-0001",
    *,
    completed_at: datetime = T0,
    decision: str = "approved",
    product: str = "personal_loan",
    decided_by: str | None = "rules",
    report: dict[str, Any] | None = None,
) -> StoredReport:
    return StoredReport(
        application_id=application_id,
        product=product,
        decision=decision,
        decided_by=decided_by,
        rule_set_version="credit-rules@2025-02-14",
        submitted_at=completed_at - timedelta(hours=2),
        completed_at=completed_at,
        stored_at=completed_at + timedelta(seconds=1),
        report=report if report is not None else {"summary": application_id},
    )


def _ids(page: ReportPage) -> list[str]:
    return [r.application_id for r in page.items]


def _all_pages(store: CreditReportStore, **filters: Any) -> list[ReportPage]:
    pages = [store.list(**filters)]
    while pages[-1].next_cursor is not None:
        pages.append(store.list(**filters, cursor=pages[-1].next_cursor))
    return pages


# --- migration --------------------------------------------------------------------------------


def test_migration_creates_table_and_indexes(fresh_database_url: str) -> None:
    upgrade_database(fresh_database_url)

    assert current_revision(fresh_database_url) == head_revision()
    engine = create_db_engine(fresh_database_url)
    try:
        inspector = sa.inspect(engine)
        columns = {c["name"]: c for c in inspector.get_columns("credit_reports")}
        assert set(columns) == {
            "application_id",
            "product",
            "decision",
            "decided_by",
            "rule_set_version",
            "submitted_at",
            "completed_at",
            "stored_at",
            "report",
        }
        assert [name for name, c in columns.items() if c["nullable"]] == ["decided_by"]
        assert inspector.get_pk_constraint("credit_reports")["constrained_columns"] == [
            "application_id"
        ]
        indexes = {i["name"]: i["column_names"] for i in inspector.get_indexes("credit_reports")}
        assert indexes == {
            "ix_credit_reports_completed_at_application_id": ["completed_at", "application_id"],
            "ix_credit_reports_decision": ["decision"],
            "ix_credit_reports_product": ["product"],
        }
        if engine.dialect.name == "postgresql":
            assert columns["report"]["type"].__class__.__name__ == "JSONB"
            completed_type = columns["completed_at"]["type"]
            assert isinstance(completed_type, sa.DateTime)
            assert completed_type.timezone is True
    finally:
        engine.dispose()


def test_migrations_match_the_table_definitions(engine: Engine) -> None:
    # The migration spells its columns out; this catches the two drifting apart.
    with engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diffs == []


# --- save and get -----------------------------------------------------------------------------


def test_save_and_get_roundtrip_nested_json(store: CreditReportStore) -> None:
    row = _report(report=NESTED_REPORT, decided_by="reviewer-42")

    assert store.save(row) is True
    got = store.get("app-0001")

    assert got == row
    assert got is not None
    assert got.report == NESTED_REPORT
    assert isinstance(got.report["bureau"]["utilisation"], float)
    assert isinstance(got.report["big"], int)


def test_get_unknown_is_none(store: CreditReportStore) -> None:
    assert store.get("nope") is None


def test_datetimes_come_back_aware_in_utc(store: CreditReportStore) -> None:
    # Given in +05:30: stored and returned as the same instant in UTC.
    india = timezone(timedelta(hours=5, minutes=30))
    completed = datetime(2025, 3, 1, 17, 30, 15, 123456, tzinfo=india)
    store.save(_report(completed_at=completed))

    got = store.get("app-0001")

    assert got is not None
    for value in (got.submitted_at, got.completed_at, got.stored_at):
        assert value.utcoffset() == timedelta(0)
    assert got.completed_at == completed
    assert got.completed_at.replace(tzinfo=None) == datetime(2025, 3, 1, 12, 0, 15, 123456)


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValidationError):
        _report(completed_at=datetime(2025, 3, 1, 12, 0))


def test_non_json_reports_are_refused() -> None:
    with pytest.raises(ValidationError, match="plain JSON"):
        _report(report={"when": datetime(2025, 3, 1, tzinfo=UTC)})
    with pytest.raises(ValidationError, match="plain JSON"):
        _report(report={"score": float("nan")})


def test_second_save_keeps_the_first_report(store: CreditReportStore) -> None:
    first = _report(decision="approved", report={"v": 1})
    second = _report(decision="declined", decided_by="reviewer-7", report={"v": 2})

    assert store.save(first) is True
    assert store.save(second) is False
    assert store.save(first) is False

    assert store.get("app-0001") == first
    assert len(store.list().items) == 1


def test_concurrent_saves_of_one_application_store_exactly_one(
    store: CreditReportStore,
) -> None:
    threads = 8
    barrier = threading.Barrier(threads)
    rows = [_report(decided_by=f"worker-{i}", report={"attempt": i}) for i in range(threads)]

    def call(i: int) -> bool:
        barrier.wait(timeout=10)
        return store.save(rows[i])

    with ThreadPoolExecutor(max_workers=threads) as pool:
        results = list(pool.map(call, range(threads)))

    assert results.count(True) == 1
    assert store.get("app-0001") == rows[results.index(True)]


def test_unsupported_dialect_is_refused() -> None:
    # Only the dialect name is consulted, so a stand-in avoids needing a MySQL driver.
    engine = cast(Engine, SimpleNamespace(dialect=SimpleNamespace(name="mysql")))
    with pytest.raises(ValueError, match="PostgreSQL and SQLite, not mysql"):
        CreditReportStore(engine)


# --- list filters ----------------------------------------------------------------------------


def test_list_filters_by_decision_and_product(store: CreditReportStore) -> None:
    store.save(_report("a1", decision="approved", product="personal_loan"))
    store.save(_report("a2", decision="declined", product="personal_loan"))
    store.save(_report("a3", decision="approved", product="credit_card"))
    store.save(_report("a4", decision="withdrawn", product="credit_card", decided_by=None))

    assert _ids(store.list(decision="approved")) == ["a1", "a3"]
    assert _ids(store.list(product="credit_card")) == ["a3", "a4"]
    assert _ids(store.list(decision="approved", product="credit_card")) == ["a3"]
    assert _ids(store.list(decision="failed")) == []
    assert _ids(store.list()) == ["a1", "a2", "a3", "a4"]


def test_list_date_range_is_from_inclusive_to_exclusive(store: CreditReportStore) -> None:
    for i in range(5):
        store.save(_report(f"d{i}", completed_at=T0 + timedelta(hours=i)))
    one_us = timedelta(microseconds=1)

    assert _ids(store.list(completed_from=T0 + timedelta(hours=1))) == ["d1", "d2", "d3", "d4"]
    assert _ids(store.list(completed_from=T0 + timedelta(hours=1) + one_us)) == [
        "d2",
        "d3",
        "d4",
    ]
    assert _ids(store.list(completed_to=T0 + timedelta(hours=3))) == ["d0", "d1", "d2"]
    assert _ids(store.list(completed_to=T0 + timedelta(hours=3) + one_us)) == [
        "d0",
        "d1",
        "d2",
        "d3",
    ]
    assert _ids(
        store.list(completed_from=T0 + timedelta(hours=1), completed_to=T0 + timedelta(hours=3))
    ) == ["d1", "d2"]
    # The same instants written in another zone select the same rows.
    est = timezone(timedelta(hours=-5))
    assert _ids(
        store.list(
            completed_from=(T0 + timedelta(hours=1)).astimezone(est),
            completed_to=(T0 + timedelta(hours=3)).astimezone(est),
        )
    ) == ["d1", "d2"]


def test_list_refuses_naive_bounds(store: CreditReportStore) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        store.list(completed_from=datetime(2025, 3, 1))


@pytest.mark.parametrize("limit", [0, -1, 501, 10_000])
def test_list_refuses_limit_out_of_range(store: CreditReportStore, limit: int) -> None:
    with pytest.raises(ValueError, match="limit must be between 1 and 500"):
        store.list(limit=limit)


@pytest.mark.parametrize("limit", [1, 500])
def test_list_accepts_limit_at_the_bounds(store: CreditReportStore, limit: int) -> None:
    store.save(_report())
    assert _ids(store.list(limit=limit)) == ["app-0001"]


# --- paging ----------------------------------------------------------------------------------


def _save_25(store: CreditReportStore) -> list[str]:
    # Groups of three share a completed_at, so application_id must break the ties; ids are
    # saved out of order so insertion order cannot pass for the sort order.
    expected = []
    for i in range(25):
        completed = T0 + timedelta(minutes=i // 3)
        expected.append((completed, f"app-{i:04d}"))
    for completed, app_id in reversed(expected):
        assert store.save(_report(app_id, completed_at=completed)) is True
    return [app_id for _, app_id in sorted(expected)]


def test_paging_25_reports_by_10_gives_three_pages_in_order(store: CreditReportStore) -> None:
    expected = _save_25(store)

    pages = _all_pages(store, limit=10)

    assert [len(p.items) for p in pages] == [10, 10, 5]
    assert [p.next_cursor is None for p in pages] == [False, False, True]
    assert [app_id for p in pages for app_id in _ids(p)] == expected
    keys = [(r.completed_at, r.application_id) for p in pages for r in p.items]
    assert keys == sorted(keys)


def test_paging_an_exact_multiple_has_no_empty_last_page(store: CreditReportStore) -> None:
    for i in range(20):
        store.save(_report(f"app-{i:04d}", completed_at=T0 + timedelta(seconds=i)))

    pages = _all_pages(store, limit=10)

    assert [len(p.items) for p in pages] == [10, 10]
    assert pages[-1].next_cursor is None


def test_paging_with_filters_keeps_the_filters(store: CreditReportStore) -> None:
    for i in range(12):
        decision = "approved" if i % 2 else "declined"
        store.save(
            _report(f"app-{i:04d}", completed_at=T0 + timedelta(seconds=i), decision=decision)
        )

    pages = _all_pages(store, decision="approved", limit=4)

    assert [_ids(p) for p in pages] == [
        ["app-0001", "app-0003", "app-0005", "app-0007"],
        ["app-0009", "app-0011"],
    ]


def test_paging_is_stable_when_rows_are_added(store: CreditReportStore) -> None:
    expected = _save_25(store)
    first = store.list(limit=10)
    assert first.next_cursor is not None
    last_seen = first.items[-1]

    # Before the cursor (earlier, and a tie that sorts before it) must not shift the pages;
    # after it (a tie that sorts after it, and later) must show up in order.
    store.save(_report("app-0000a", completed_at=T0 - timedelta(days=1)))
    assert store.save(_report("app-0008", completed_at=last_seen.completed_at)) is False
    store.save(_report("app-0008a", completed_at=last_seen.completed_at))
    store.save(_report("app-0009a", completed_at=last_seen.completed_at))
    store.save(_report("app-9999", completed_at=T0 + timedelta(days=1)))
    assert last_seen.application_id == "app-0009"

    rest = [store.list(limit=10, cursor=first.next_cursor)]
    while rest[-1].next_cursor is not None:
        rest.append(store.list(limit=10, cursor=rest[-1].next_cursor))

    seen = _ids(first) + [app_id for p in rest for app_id in _ids(p)]
    assert seen == expected[:10] + ["app-0009a"] + expected[10:] + ["app-9999"]
    assert len(seen) == len(set(seen))


def test_cursor_is_opaque_urlsafe_text(store: CreditReportStore) -> None:
    _save_25(store)
    cursor = store.list(limit=10).next_cursor

    assert cursor is not None
    assert set(cursor) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    [
        "",
        "not a cursor!",
        "%%%",
        "A",
        "ÿÿÿÿ",
        _b64(b"\xff\xfe\x00"),
        _b64(b"not json"),
        _b64(json.dumps({"completed_at": "2025-03-01T12:00:00+00:00"}).encode()),
        _b64(json.dumps(["2025-03-01T12:00:00+00:00"]).encode()),
        _b64(json.dumps(["2025-03-01T12:00:00+00:00", 7]).encode()),
        _b64(json.dumps(["yesterday", "app-1"]).encode()),
        _b64(json.dumps(["2025-03-01T12:00:00", "app-1"]).encode()),
        _b64(json.dumps(["2025-03-01T12:00:00+00:00", ""]).encode()),
        _b64(json.dumps(["2025-03-01T12:00:00+00:00", "x" * 65]).encode()),
        "A" * 600,
    ],
)
def test_malformed_cursor_raises_invalid_cursor(store: CreditReportStore, cursor: str) -> None:
    with pytest.raises(InvalidCursor, match="invalid cursor"):
        store.list(cursor=cursor)


def test_invalid_cursor_is_a_value_error() -> None:
    assert issubclass(InvalidCursor, ValueError)


def test_with_the_key_ring_the_report_body_is_ciphertext_at_rest(engine: Engine) -> None:
    old, new = new_key(), new_key()
    before = CreditReportStore(engine, sealer=EncryptionCodec(KeyRing.parse(old)))
    assert before.save(_report("app-sealed-1", report=NESTED_REPORT))
    with engine.connect() as conn:
        raw = json.dumps(conn.execute(sa.select(credit_reports.c.report)).scalar_one())
    for clear in ("Zoë", "Zürich", "25000", "dti_max"):
        assert clear not in raw
    # The filterable columns stay clear; the body reads back whole, after a key rotation too.
    rotated = CreditReportStore(engine, sealer=EncryptionCodec(KeyRing.parse(f"*{new},{old}")))
    got = rotated.get("app-sealed-1")
    assert got is not None and got.report == NESTED_REPORT
    assert [r.application_id for r in rotated.list(decision="approved").items] == ["app-sealed-1"]
    # Without the key nothing is readable, and the error says why.
    with pytest.raises(KeyRingError, match="encrypted"):
        CreditReportStore(engine).get("app-sealed-1")

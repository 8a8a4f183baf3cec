"""The database layer against SQLite and a real PostgreSQL: migrations, engine, opt-outs."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from fiflow.integrations.database import (
    create_db_engine,
    current_revision,
    head_revision,
    upgrade_database,
)
from fiflow.integrations.optouts import OptOutStore

AT = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
HASH = "a" * 64


@pytest.fixture
def store(engine: Engine) -> OptOutStore:
    return OptOutStore(engine)


def _stop(store: OptOutStore, address_hash: str = HASH, message_id: str = "SM1") -> bool:
    return store.set_opted_out(
        address_hash, True, keyword="STOP", source_message_id=message_id, at=AT
    )


def _start(store: OptOutStore, address_hash: str = HASH, message_id: str = "SM2") -> bool:
    return store.set_opted_out(
        address_hash, False, keyword="START", source_message_id=message_id, at=AT
    )


def _columns(engine: Engine, table: str) -> dict[str, dict[str, object]]:
    return {c["name"]: dict(c) for c in sa.inspect(engine).get_columns(table)}


# --- migrations -------------------------------------------------------------------------------


def test_upgrade_creates_table_and_reports_head(fresh_database_url: str) -> None:
    assert current_revision(fresh_database_url) is None

    upgrade_database(fresh_database_url)

    assert current_revision(fresh_database_url) == head_revision() == "0011"
    engine = create_db_engine(fresh_database_url)
    try:
        columns = _columns(engine, "sms_opt_outs")
        assert set(columns) == {
            "address_hash",
            "opted_out",
            "keyword",
            "source_message_id",
            "updated_at",
        }
        assert not columns["opted_out"]["nullable"]
        assert not columns["updated_at"]["nullable"]
        assert columns["keyword"]["nullable"]
        assert columns["source_message_id"]["nullable"]
        pk = sa.inspect(engine).get_pk_constraint("sms_opt_outs")
        assert pk["constrained_columns"] == ["address_hash"]
    finally:
        engine.dispose()


def test_upgrade_twice_is_a_no_op(migrated_url: str) -> None:
    engine = create_db_engine(migrated_url)
    try:
        assert _stop(OptOutStore(engine)) is True
    finally:
        engine.dispose()

    upgrade_database(migrated_url)

    assert current_revision(migrated_url) == head_revision()
    engine = create_db_engine(migrated_url)
    try:
        assert OptOutStore(engine).is_opted_out(HASH)
    finally:
        engine.dispose()


def test_concurrent_upgrades_from_several_processes(fresh_database_url: str) -> None:
    # Several workers starting at once each run the migrations on the same empty database.
    code = "import sys\nfrom fiflow.integrations.database import upgrade_database\n"
    code += "upgrade_database(sys.argv[1])"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, fresh_database_url],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(4)
    ]
    outputs = [p.communicate(timeout=60)[0] for p in procs]
    assert [p.returncode for p in procs] == [0] * 4, outputs
    assert current_revision(fresh_database_url) == head_revision()


def test_concurrent_upgrades_from_threads(fresh_database_url: str) -> None:
    with ThreadPoolExecutor(max_workers=4) as pool:
        for future in [pool.submit(upgrade_database, fresh_database_url) for _ in range(4)]:
            future.result()

    assert current_revision(fresh_database_url) == head_revision()


# --- engine -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "postgres://u:p@db.example:5432/fiflow",
        "postgresql://u:p@db.example:5432/fiflow",
        "postgresql+psycopg://u:p@db.example:5432/fiflow",
    ],
)
def test_postgres_urls_use_psycopg3(url: str) -> None:
    engine = create_db_engine(url)
    try:
        assert engine.url.drivername == "postgresql+psycopg"
        assert engine.url.host == "db.example"
        assert engine.url.database == "fiflow"
        assert engine.pool._pre_ping  # type: ignore[attr-defined]
    finally:
        engine.dispose()


def test_sqlite_engine_creates_directory_and_sets_pragmas(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "dir" / "fiflow.db"
    engine = create_db_engine(f"sqlite:///{path}")
    try:
        with engine.connect() as conn:
            pragma: Callable[[str], object] = lambda name: conn.exec_driver_sql(  # noqa: E731
                f"PRAGMA {name}"
            ).scalar()
            assert pragma("journal_mode") == "wal"
            assert pragma("synchronous") == 1  # NORMAL
            assert pragma("busy_timeout") == 5000
            assert pragma("foreign_keys") == 1
        assert path.exists()
    finally:
        engine.dispose()


def test_sqlite_transactions_roll_back(tmp_path: Path) -> None:
    # The driver runs in autocommit mode with our own BEGIN; rollback must still work.
    engine = create_db_engine(f"sqlite:///{tmp_path / 'x.db'}")
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE t (x INTEGER)")
        with engine.connect() as conn:
            conn.exec_driver_sql("INSERT INTO t VALUES (1)")
            conn.rollback()
        with engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT count(*) FROM t").scalar() == 0
    finally:
        engine.dispose()


# --- opt-out semantics ------------------------------------------------------------------------


def test_unknown_address_is_not_opted_out(store: OptOutStore) -> None:
    assert store.is_opted_out(HASH) is False


def test_first_stop_changes_state(store: OptOutStore) -> None:
    assert _stop(store) is True
    assert store.is_opted_out(HASH) is True


def test_repeated_stop_does_not_change_state(store: OptOutStore) -> None:
    assert _stop(store, message_id="SM1") is True
    assert _stop(store, message_id="SM2") is False
    assert store.is_opted_out(HASH) is True


def test_the_same_keyword_message_stored_again_still_counts_as_its_change(
    store: OptOutStore,
) -> None:
    # A retried activity (or a write carried across continue-as-new) after the commit.
    assert _stop(store, message_id="SM1") is True
    assert _stop(store, message_id="SM1") is True
    assert _stop(store, message_id="SM2") is False  # another STOP changed nothing
    assert _start(store, message_id="SM3") is True
    assert _start(store, message_id="SM3") is True
    assert _stop(store, message_id="SM1") is True  # SM1 again: it is a change once more


def test_start_after_stop_changes_state(store: OptOutStore) -> None:
    assert _stop(store) is True
    assert _start(store) is True
    assert store.is_opted_out(HASH) is False
    assert _start(store, message_id="SM3") is False
    assert _stop(store, message_id="SM4") is True
    assert store.is_opted_out(HASH) is True


def test_start_without_row_changes_nothing(store: OptOutStore, engine: Engine) -> None:
    assert _start(store) is False
    assert store.is_opted_out(HASH) is False
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM sms_opt_outs").scalar() == 0


def test_row_records_keyword_message_and_time(store: OptOutStore, engine: Engine) -> None:
    _stop(store, message_id="SMabc")
    later = datetime(2025, 3, 2, 8, 30, tzinfo=UTC)
    store.set_opted_out(HASH, False, keyword="UNSTOP", source_message_id="SMdef", at=later)

    with engine.connect() as conn:
        row = conn.exec_driver_sql(
            "SELECT opted_out, keyword, source_message_id, updated_at FROM sms_opt_outs"
        ).one()
    assert row.opted_out in (False, 0)
    assert row.keyword == "UNSTOP"
    assert row.source_message_id == "SMdef"
    assert str(row.updated_at).startswith("2025-03-02")


def test_addresses_are_independent(store: OptOutStore) -> None:
    assert _stop(store, "a" * 64) is True
    assert store.is_opted_out("b" * 64) is False
    assert _stop(store, "b" * 64) is True


def test_concurrent_stops_and_starts_change_state_exactly_once(store: OptOutStore) -> None:
    threads = 8

    def race(opted_out: bool) -> list[bool]:
        barrier = threading.Barrier(threads)

        def call(i: int) -> bool:
            barrier.wait(timeout=10)
            return store.set_opted_out(
                HASH, opted_out, keyword="X", source_message_id=f"SM{i}", at=AT
            )

        with ThreadPoolExecutor(max_workers=threads) as pool:
            return list(pool.map(call, range(threads)))

    for _ in range(3):
        assert race(True).count(True) == 1
        assert store.is_opted_out(HASH) is True
        assert race(False).count(True) == 1
        assert store.is_opted_out(HASH) is False


def test_opt_outs_survive_restart(migrated_url: str) -> None:
    engine = create_db_engine(migrated_url)
    _stop(OptOutStore(engine))
    engine.dispose()

    engine = create_db_engine(migrated_url)
    try:
        store = OptOutStore(engine)
        assert store.is_opted_out(HASH) is True
        assert _stop(store, message_id="SM9") is False
    finally:
        engine.dispose()

"""Rule set versions against SQLite and a real PostgreSQL: schema, activation, the active one."""

from __future__ import annotations

import hashlib
import json
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta, timezone
from types import SimpleNamespace
from typing import Any, cast

import pytest
import sqlalchemy as sa
from pydantic import ValidationError
from sqlalchemy.engine import Engine

from fiflow.integrations.database import (
    create_db_engine,
    current_revision,
    head_revision,
    upgrade_database,
)
from fiflow.integrations.rule_versions import RuleVersion, RuleVersionStore, VersionConflict

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
INDIA = timezone(timedelta(hours=5, minutes=30))

RULES: dict[str, Any] = {
    "name": "alerts",
    "version": "2025-03-01",
    "triggers": [
        {"id": "repeat_caller", "when": {"within_days": 7, "min_count": 2}, "weight": 0.75},
        {"id": "fraud_keyword", "keywords": ["fraud", "stolen", "vol", "盗难"], "enabled": True},
    ],
    "limits": {"max_amount": 12345678901234567, "none": None},
}


@pytest.fixture
def store(engine: Engine) -> RuleVersionStore:
    return RuleVersionStore(engine)


def _sha256(content: dict[str, Any]) -> str:
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _activate(
    store: RuleVersionStore,
    version: str,
    *,
    name: str = "alerts",
    at: datetime = T0,
    content: dict[str, Any] | None = None,
    by: str | None = "ops@fi",
) -> RuleVersion:
    body = content if content is not None else {"version": version}
    return store.activate(name, version, body, activated_at=at, activated_by=by)


def _versions(rows: list[RuleVersion]) -> list[tuple[str, str]]:
    return [(r.name, r.version) for r in rows]


def _count(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.text("SELECT count(*) FROM rule_versions")).scalar_one())


# --- migration --------------------------------------------------------------------------------


def test_migration_creates_rule_versions(fresh_database_url: str) -> None:
    upgrade_database(fresh_database_url)

    assert current_revision(fresh_database_url) == head_revision()
    engine = create_db_engine(fresh_database_url)
    try:
        inspector = sa.inspect(engine)
        columns = {c["name"]: c for c in inspector.get_columns("rule_versions")}
        assert list(columns) == [
            "id",
            "name",
            "version",
            "content",
            "content_sha256",
            "activated_at",
            "activated_by",
        ]
        assert [n for n, c in columns.items() if c["nullable"]] == ["activated_by"]
        assert inspector.get_pk_constraint("rule_versions")["constrained_columns"] == ["id"]
        indexes = {
            i["name"]: i["column_names"]
            for i in inspector.get_indexes("rule_versions")
            if not i.get("duplicates_constraint")
        }
        assert indexes == {"ix_rule_versions_name_activated_at": ["name", "activated_at"]}
        uniques = inspector.get_unique_constraints("rule_versions")
        assert [(u["name"], u["column_names"]) for u in uniques] == [
            ("uq_rule_versions_name_version", ["name", "version"])
        ]
        if engine.dialect.name == "postgresql":
            assert columns["content"]["type"].__class__.__name__ == "JSONB"
            activated_type = columns["activated_at"]["type"]
            assert isinstance(activated_type, sa.DateTime)
            assert activated_type.timezone is True
            assert columns["id"]["autoincrement"] is True
    finally:
        engine.dispose()


def test_unsupported_dialect_is_refused() -> None:
    # Only the dialect name is consulted, so a stand-in avoids needing a MySQL driver.
    engine = cast(Engine, SimpleNamespace(dialect=SimpleNamespace(name="mysql")))
    with pytest.raises(ValueError, match="PostgreSQL and SQLite, not mysql"):
        RuleVersionStore(engine)


# --- activate ---------------------------------------------------------------------------------


def test_activate_stores_and_returns_the_version(store: RuleVersionStore) -> None:
    got = store.activate("alerts", "2025-03-01", RULES, activated_at=T0, activated_by="ops@fi")

    assert (got.name, got.version, got.activated_by) == ("alerts", "2025-03-01", "ops@fi")
    assert got.content == RULES
    assert got.content_sha256 == _sha256(RULES)
    assert got.activated_at == T0
    assert store.active("alerts") == got
    assert store.versions() == [got]


def test_content_roundtrips_nested_json(store: RuleVersionStore) -> None:
    _activate(store, "v1", content=RULES)

    got = store.active("alerts")

    assert got is not None
    assert got.content == RULES
    assert isinstance(got.content["triggers"][0]["weight"], float)
    assert isinstance(got.content["limits"]["max_amount"], int)


def test_activated_by_is_optional(store: RuleVersionStore) -> None:
    got = _activate(store, "v1", by=None)
    assert got.activated_by is None
    stored = store.active("alerts")
    assert stored is not None and stored.activated_by is None


def test_repeating_the_active_version_is_a_retry_that_changes_nothing(
    store: RuleVersionStore, engine: Engine
) -> None:
    _activate(store, "v1", at=T0)
    first = _activate(store, "v2", content=RULES, at=T0 + timedelta(hours=1), by="alice")

    # Same content with keys in another order: a retry, not a change.
    reordered = json.loads(json.dumps(RULES, sort_keys=True))
    reordered = dict(reversed(list(reordered.items())))
    retry = _activate(store, "v2", content=reordered, at=T0 + timedelta(hours=2), by="bob")

    assert retry == first
    assert _count(engine) == 2
    assert store.active("alerts") == first


def test_activating_an_older_version_again_rolls_back_to_it(
    store: RuleVersionStore, engine: Engine
) -> None:
    first = _activate(store, "v1", content=RULES, at=T0, by="alice")
    _activate(store, "v2", at=T0 + timedelta(hours=1))
    marker_before = store.active_marker("alerts")

    rolled_back = _activate(store, "v1", content=RULES, at=T0 + timedelta(hours=2), by="bob")

    assert (rolled_back.id, rolled_back.version) == (first.id, "v1")
    assert (rolled_back.activated_at, rolled_back.activated_by) == (T0 + timedelta(hours=2), "bob")
    assert _count(engine) == 2  # no new row: the version is the same document
    assert store.active("alerts") == rolled_back
    assert store.active_marker("alerts") != marker_before


def test_same_version_with_other_content_raises_conflict(
    store: RuleVersionStore, engine: Engine
) -> None:
    first = _activate(store, "2025-03-01", content=RULES)
    changed = {**RULES, "limits": {"max_amount": 1}}

    with pytest.raises(VersionConflict, match="'2025-03-01'") as caught:
        _activate(store, "2025-03-01", content=changed, at=T0 + timedelta(hours=1))

    assert isinstance(caught.value, ValueError)
    assert _count(engine) == 1
    assert store.active("alerts") == first


def test_one_version_name_under_two_rule_sets_is_two_versions(store: RuleVersionStore) -> None:
    alerts = _activate(store, "v1", name="alerts", content={"a": 1})
    credit = _activate(store, "v1", name="credit", content={"c": 2})

    assert alerts.id != credit.id
    assert store.active("alerts") == alerts
    assert store.active("credit") == credit


def test_active_is_the_most_recent_activation(store: RuleVersionStore) -> None:
    _activate(store, "v1", at=T0)
    _activate(store, "v2", at=T0 + timedelta(hours=1))
    v3 = _activate(store, "v3", at=T0 + timedelta(hours=2))
    _activate(store, "c1", name="credit", at=T0 + timedelta(hours=5))

    assert store.active("alerts") == v3
    active_credit = store.active("credit")
    assert active_credit is not None and active_credit.version == "c1"
    assert store.active("unknown") is None


def test_active_goes_by_activated_at_then_id(store: RuleVersionStore) -> None:
    later = _activate(store, "v-later", at=T0 + timedelta(hours=1))
    # Recorded afterwards but activated earlier (a backfill): not the active one.
    _activate(store, "v-backfill", at=T0)
    assert store.active("alerts") == later

    # Same instant: the later activation (higher id) wins.
    tie = _activate(store, "v-tie", at=T0 + timedelta(hours=1))
    assert tie.id > later.id
    assert store.active("alerts") == tie


def test_versions_newest_first(store: RuleVersionStore) -> None:
    _activate(store, "v2", at=T0 + timedelta(hours=1))
    _activate(store, "v1", at=T0)
    _activate(store, "c1", name="credit", at=T0 + timedelta(minutes=30))
    _activate(store, "v3", at=T0 + timedelta(hours=2))

    assert _versions(store.versions("alerts")) == [
        ("alerts", "v3"),
        ("alerts", "v2"),
        ("alerts", "v1"),
    ]
    assert _versions(store.versions()) == [
        ("alerts", "v3"),
        ("alerts", "v2"),
        ("credit", "c1"),
        ("alerts", "v1"),
    ]
    assert _versions(store.versions("credit")) == [("credit", "c1")]
    assert store.versions("unknown") == []


def test_active_marker_changes_only_on_a_new_activation(store: RuleVersionStore) -> None:
    assert store.active_marker("alerts") is None

    v1 = _activate(store, "v1", content=RULES, at=T0)
    marker = store.active_marker("alerts")
    assert marker == (v1.id, "v1")

    # An idempotent retry, a refused conflict and another rule set change nothing here.
    _activate(store, "v1", content=RULES, at=T0 + timedelta(hours=1))
    with pytest.raises(VersionConflict):
        _activate(store, "v1", content={"other": True}, at=T0 + timedelta(hours=1))
    _activate(store, "c1", name="credit", at=T0 + timedelta(hours=2))
    assert store.active_marker("alerts") == marker

    v2 = _activate(store, "v2", at=T0 + timedelta(hours=3))
    assert store.active_marker("alerts") == (v2.id, "v2")
    assert store.active_marker("alerts") != marker
    active = store.active("alerts")
    assert active is not None and store.active_marker("alerts") == (active.id, active.version)


def test_activated_at_comes_back_aware_in_utc(store: RuleVersionStore) -> None:
    at = datetime(2025, 3, 1, 17, 30, 15, 123456, tzinfo=INDIA)
    returned = _activate(store, "v1", at=at)

    got = store.active("alerts")

    assert got is not None
    for value in (returned.activated_at, got.activated_at):
        assert value.utcoffset() == timedelta(0)
        assert value == at
    assert got.activated_at.replace(tzinfo=None) == datetime(2025, 3, 1, 12, 0, 15, 123456)


def test_order_compares_instants_across_zones(store: RuleVersionStore) -> None:
    # 13:00 UTC written in +05:30 is later than 12:30 UTC, though its wall clock reads 18:30.
    _activate(store, "v-utc", at=T0 + timedelta(minutes=30))
    later = _activate(store, "v-india", at=(T0 + timedelta(hours=1)).astimezone(INDIA))
    _activate(
        store, "v-west", at=(T0 + timedelta(minutes=45)).astimezone(timezone(-timedelta(hours=8)))
    )

    assert store.active("alerts") == later


def test_concurrent_activations_of_one_version_store_one_row(
    store: RuleVersionStore, engine: Engine
) -> None:
    threads = 8
    barrier = threading.Barrier(threads)

    def call(i: int) -> RuleVersion:
        barrier.wait(timeout=10)
        return _activate(store, "v1", content=RULES, at=T0 + timedelta(seconds=i), by=f"w{i}")

    with ThreadPoolExecutor(max_workers=threads) as pool:
        results = list(pool.map(call, range(threads)))

    assert len({r.id for r in results}) == 1
    assert all(r == results[0] for r in results)
    assert _count(engine) == 1


def test_concurrent_conflicting_activations_let_exactly_one_win(
    store: RuleVersionStore, engine: Engine
) -> None:
    threads = 8
    barrier = threading.Barrier(threads)

    def call(i: int) -> RuleVersion | None:
        barrier.wait(timeout=10)
        try:
            return _activate(store, "v1", content={"attempt": i})
        except VersionConflict:
            return None

    with ThreadPoolExecutor(max_workers=threads) as pool:
        results = list(pool.map(call, range(threads)))

    winners = [r for r in results if r is not None]
    assert len(winners) == 1
    assert store.active("alerts") == winners[0]
    assert winners[0].content == {"attempt": results.index(winners[0])}
    assert _count(engine) == 1


def test_invalid_activations_are_refused(store: RuleVersionStore, engine: Engine) -> None:
    with pytest.raises(ValidationError, match="timezone"):
        _activate(store, "v1", at=datetime(2025, 3, 1, 12, 0))
    with pytest.raises(ValueError, match="plain JSON"):
        _activate(store, "v1", content={"weight": float("nan")})
    with pytest.raises(ValueError, match="plain JSON"):
        _activate(store, "v1", content={"when": T0})
    with pytest.raises(ValueError, match="JSON object"):
        store.activate("alerts", "v1", [1, 2], activated_at=T0)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="at most 32"):
        _activate(store, "v1", name="n" * 33)
    with pytest.raises(ValidationError, match="at most 64"):
        _activate(store, "v" * 65)
    with pytest.raises(ValidationError, match="at least 1"):
        _activate(store, "")
    assert _count(engine) == 0


def test_version_conflict_is_a_value_error() -> None:
    assert issubclass(VersionConflict, ValueError)

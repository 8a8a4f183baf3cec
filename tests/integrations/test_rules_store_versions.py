"""RuleStore with versions activated through the admin API (real SQLite), and a DB outage."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError

from fiflow.domain.rules import RuleSetError
from fiflow.integrations import rules_store
from fiflow.integrations.rule_versions import RuleVersionStore
from fiflow.integrations.rules_store import RuleStore

SHIPPED = Path(__file__).resolve().parents[2] / "fiflow" / "rules" / "triggers.yaml"
AT = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def triggers(version: str) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(SHIPPED.read_text(encoding="utf-8"))
    return {**data, "version": version}


@pytest.fixture(params=["sqlite"])
def fresh_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    # The store logic is the same on both databases; the versions store itself is tested
    # on PostgreSQL too (test_rule_versions.py).
    return f"sqlite:///{tmp_path / 'fiflow.db'}"


def test_an_activated_version_overrides_the_file_and_the_next_one_follows(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rules_store, "ACTIVE_VERSION_TTL", 0.0)
    versions = RuleVersionStore(engine)
    store = RuleStore(None, versions)
    shipped_version = store.trigger_rules().version

    versions.activate("triggers", "v-api-1", triggers("v-api-1"), activated_at=AT)
    assert store.trigger_rules().version == "v-api-1"
    assert store.from_file("triggers").version == shipped_version
    versions.activate("triggers", "v-api-2", triggers("v-api-2"), activated_at=AT)
    assert store.trigger_rules().version == "v-api-2"
    # Other rule sets are untouched.
    assert store.alert_rules().version == RuleStore(None).alert_rules().version


class Down:
    """A versions store whose database is unreachable."""

    def active_marker(self, name: str) -> None:
        raise OperationalError("SELECT", {}, Exception("connection refused"))

    def active(self, name: str) -> None:
        raise AssertionError("not reached")


def test_a_database_outage_keeps_the_version_in_use(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rules_store, "ACTIVE_VERSION_TTL", 0.0)
    versions = RuleVersionStore(engine)
    versions.activate("triggers", "v-api-1", triggers("v-api-1"), activated_at=AT)
    store = RuleStore(None, versions)
    assert store.trigger_rules().version == "v-api-1"

    store._versions = Down()  # type: ignore[assignment]

    assert store.trigger_rules().version == "v-api-1"
    fresh = RuleStore(None, Down())  # type: ignore[arg-type]
    with pytest.raises(RuleSetError, match="cannot read the active triggers rule version"):
        fresh.trigger_rules()

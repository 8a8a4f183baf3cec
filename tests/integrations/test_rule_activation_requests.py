"""Four-eyes rule activations in the store, on SQLite and PostgreSQL: ask, approve by another."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from fiflow.integrations.rule_versions import (
    NoPendingActivation,
    RuleVersionStore,
    SameAdmin,
    VersionConflict,
)

T0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
RULES = {"name": "credit", "version": "2025-03-01", "limit": 1}


@pytest.fixture
def store(engine: Engine) -> RuleVersionStore:
    return RuleVersionStore(engine)


def test_the_migration_creates_the_requests_table(engine: Engine) -> None:
    columns = [c["name"] for c in sa.inspect(engine).get_columns("rule_activation_requests")]
    assert columns == [
        "id", "name", "version", "content", "content_sha256", "requested_at", "requested_by",
        "status", "decided_at", "decided_by",
    ]  # fmt: skip


def test_a_request_changes_nothing_until_another_admin_approves(store: RuleVersionStore) -> None:
    pending = store.request_activation(
        "credit", "2025-03-01", RULES, requested_at=T0, requested_by="ana"
    )
    assert pending is not None and (pending.requested_by, pending.status) == ("ana", "pending")
    assert store.active("credit") is None
    # The same request again is the same request.
    again = store.request_activation(
        "credit", "2025-03-01", RULES, requested_at=T0 + timedelta(minutes=1), requested_by="ana"
    )
    assert again is not None and again.id == pending.id
    with pytest.raises(SameAdmin):
        store.approve("credit", "2025-03-01", approved_by="ana", approved_at=T0)
    assert store.active("credit") is None

    done = store.approve(
        "credit", "2025-03-01", approved_by="ben", approved_at=T0 + timedelta(hours=1)
    )
    assert (done.version, done.activated_by) == ("2025-03-01", "ana")
    active = store.active("credit")
    assert active is not None and active.version == "2025-03-01"
    assert store.requests("credit") == []
    [approved] = store.requests("credit", "approved")
    assert (approved.decided_by, approved.decided_at) == ("ben", T0 + timedelta(hours=1))
    with pytest.raises(NoPendingActivation):
        store.approve("credit", "2025-03-01", approved_by="cleo", approved_at=T0)
    # Asking for the version that is already active is nothing to approve.
    assert (
        store.request_activation("credit", "2025-03-01", RULES, requested_at=T0, requested_by="x")
        is None
    )


def test_other_content_under_a_pending_or_stored_version_conflicts(
    store: RuleVersionStore,
) -> None:
    store.request_activation("credit", "v2", RULES, requested_at=T0, requested_by="ana")
    with pytest.raises(VersionConflict):
        store.request_activation(
            "credit", "v2", {**RULES, "limit": 2}, requested_at=T0, requested_by="ben"
        )
    store.activate("credit", "v1", RULES, activated_at=T0, activated_by="ana")
    with pytest.raises(VersionConflict):
        store.request_activation(
            "credit", "v1", {**RULES, "limit": 3}, requested_at=T0, requested_by="ben"
        )
    # An older stored version asked for again is a rollback waiting for approval.
    store.activate("credit", "v3", {**RULES, "limit": 4}, activated_at=T0 + timedelta(hours=1))
    back = store.request_activation(
        "credit", "v1", RULES, requested_at=T0 + timedelta(hours=2), requested_by="ana"
    )
    assert back is not None
    store.approve("credit", "v1", approved_by="ben", approved_at=T0 + timedelta(hours=3))
    active = store.active("credit")
    assert active is not None and active.version == "v1"

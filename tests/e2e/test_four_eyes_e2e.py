"""Four-eyes rule activation on the running stack: one admin asks, another approves."""

from __future__ import annotations

import uuid

import httpx
import pytest
import yaml

from fiflow.integrations.rules_store import RuleStore
from tests.e2e.stack import ADMIN_2_PERSON_KEY, ADMIN_PERSON_KEY, RunningStack

SHARED_ADMIN_KEY = {"X-API-Key": "local-admin-key"}


@pytest.fixture(scope="module")
def stack(side_stack: RunningStack) -> RunningStack:
    """Not the shared stack (tests/e2e/conftest.py's side stack; only its API is used), so
    the rule versions it activates never show in the shared stack's rules listing."""
    return side_stack


def _credit(info: list[dict]) -> dict:
    return next(r for r in info if r["name"] == "credit")


async def test_a_credit_rules_activation_waits_for_a_second_admin(
    stack: RunningStack, http: httpx.AsyncClient
) -> None:
    url = f"{stack.api}/v1/admin/rules"
    before = _credit((await http.get(url, headers=ADMIN_PERSON_KEY)).json())
    assert before["second_admin_required"]
    # The same rules under a new version.
    document = yaml.safe_load(RuleStore(None).path("credit").read_text())
    version = f"four-eyes-{uuid.uuid4().hex[:8]}"
    document["version"] = version

    shared = await http.put(f"{url}/credit", json=document, headers=SHARED_ADMIN_KEY)
    assert (shared.status_code, shared.json()["code"]) == (403, "person_required")
    asked = await http.put(f"{url}/credit", json=document, headers=ADMIN_PERSON_KEY)
    assert asked.status_code == 202, asked.text
    assert asked.json()["active_version"] == before["active_version"]
    approve = f"{url}/credit/versions/{version}/approve"
    own = await http.post(approve, headers=ADMIN_PERSON_KEY)
    assert (own.status_code, own.json()["code"]) == (403, "second_admin_required")
    assert (
        _credit((await http.get(url, headers=ADMIN_PERSON_KEY)).json())["active_version"]
        == (before["active_version"])
    )

    approved = await http.post(approve, headers=ADMIN_2_PERSON_KEY)
    assert approved.status_code == 200, approved.text
    info = approved.json()
    assert info["active_version"] == version and info["pending"] == []
    active = next(v for v in info["versions"] if v["active"])
    assert (active["activated_by"], active["approved_by"]) == ("admin-1", "admin-2")

"""Activating credit rules through the admin API: the review ladder is checked before anything
is stored, and rule documents in the older review shape are still taken."""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
import yaml
from temporalio.client import Client

from fiflow.integrations.database import upgrade_database
from fiflow.integrations.settings import Settings
from fiflow.starters.api.app import create_app

CREDIT = yaml.safe_load(
    (Path(__file__).resolve().parents[3] / "fiflow" / "rules" / "credit.yaml").read_text()
)
ADMIN = {"X-API-Key": "local-admin-1-key"}
URL = "/v1/admin/rules/credit"


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    db_url = f"sqlite:///{tmp_path / 'fiflow.db'}"
    upgrade_database(db_url)
    # Activation never reaches Temporal: no client is needed behind the API.
    app = create_app(Settings(database_url=db_url), client=cast(Client, object()))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
        yield client


def document(version: str, review: dict[str, Any]) -> dict[str, Any]:
    data: dict[str, Any] = copy.deepcopy(CREDIT)
    data.update(version=version, review=review)
    return data


async def pending_versions(api: httpx.AsyncClient) -> list[str]:
    listed = (await api.get("/v1/admin/rules", headers=ADMIN)).json()
    credit = next(r for r in listed if r["name"] == "credit")
    return [p["version"] for p in credit["pending"]]


@pytest.mark.parametrize(
    ("ladder", "named"),
    [
        ([], "the review ladder is empty"),
        (
            [
                {"wait": "P2D", "actions": [{"type": "remind"}]},
                {"wait": "P1D", "actions": [{"type": "decide"}]},
            ],
            "ladder waits must increase",
        ),
        (
            [
                {"wait": "P1D", "actions": [{"type": "page_the_manager"}]},
                {"wait": "P2D", "actions": [{"type": "decide"}]},
            ],
            "review.ladder.0.actions.0.type",
        ),
    ],
)
async def test_an_invalid_review_ladder_is_refused_at_activation(
    api: httpx.AsyncClient, ladder: list[dict[str, Any]], named: str
) -> None:
    review = {"ladder": ladder, "documents_deadline": "P7D"}
    r = await api.put(URL, json=document("bad-ladder", review), headers=ADMIN)

    assert r.status_code == 422, r.text
    body = r.json()
    assert body["code"] == "invalid_rules"
    assert named in body["message"]
    assert "bad-ladder" not in await pending_versions(api)


async def test_a_document_in_the_older_review_shape_is_still_taken(api: httpx.AsyncClient) -> None:
    review = {
        "reminder_after": "PT6H",
        "deadline": "P2D",
        "on_deadline": "decline",
        "documents_deadline": "P5D",
    }
    r = await api.put(URL, json=document("older-shape", review), headers=ADMIN)

    # Credit rules need a second admin: asked, not yet active.
    assert r.status_code == 202, r.text
    assert await pending_versions(api) == ["older-shape"]

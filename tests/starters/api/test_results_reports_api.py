"""The alerts' and follow-ups' results reports through the real app over a migrated SQLite
database, sealed with the process's payload key ring as the worker stores them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import cast

import httpx
import pytest
from temporalio.client import Client

from fiflow.integrations.codec import EncryptionCodec, KeyRing, new_key
from fiflow.integrations.database import create_db_engine, upgrade_database
from fiflow.integrations.results_reports import ResultsReportStore
from fiflow.integrations.settings import Settings
from fiflow.starters.api.app import create_app
from tests.integrations.test_results_report_store import T0, alert, follow_up

REVIEWER = {"X-API-Key": "local-reviewer-key"}
ADMIN = {"X-API-Key": "local-admin-key"}
CHANNEL = {"X-API-Key": "local-channel-key"}


# One key ring for the module: the database is seeded once and read by every test's app.
KEY = new_key()


@pytest.fixture(autouse=True)
def payload_keys(monkeypatch: pytest.MonkeyPatch) -> str:
    """The module's key ring (in place of the package's fresh one per test)."""
    monkeypatch.setenv("FIFLOW_PAYLOAD_KEYS", KEY)
    return KEY


@pytest.fixture(scope="module")
def db_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'fiflow.db'}"
    upgrade_database(url)
    engine = create_db_engine(url)
    sealer = EncryptionCodec(KeyRing.parse(KEY))
    store = ResultsReportStore(engine, sealer=sealer)
    for n in range(3):
        at = T0 + timedelta(hours=n)
        store.save(alert(f"al-{n}", at, "no_reply" if n == 1 else "confirmed"), T0)
    store.save(follow_up("fu-1"), T0)
    engine.dispose()
    return url


@pytest.fixture
async def api(db_url: str) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(Settings(database_url=db_url), client=cast(Client, object()))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://api"
    ) as client:
        yield client


async def test_one_alert_report_and_one_follow_up_report(api: httpx.AsyncClient) -> None:
    r = await api.get("/v1/alerts/al-0/report", headers=REVIEWER)
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["kind"], body["alert_id"], body["outcome"]) == ("alert", "al-0", "confirmed")
    assert (body["failed_actions"], body["reply_seconds"]) == (["block_card"], 42.0)
    assert body["rule_set_version"] == "2025-01-01"

    r = await api.get("/v1/follow-ups/fu-1/report", headers=ADMIN)
    assert r.status_code == 200, r.text
    assert (r.json()["kind"], r.json()["outcome"], r.json()["reached"]) == (
        "follow_up",
        "resolved",
        False,
    )


@pytest.mark.parametrize(
    ("path", "headers", "status", "code"),
    [
        ("/v1/alerts/al-9/report", REVIEWER, 404, "report_not_found"),
        ("/v1/alerts/fu-1/report", REVIEWER, 404, "report_not_found"),  # a follow-up's id
        ("/v1/follow-ups/al-0/report", REVIEWER, 404, "report_not_found"),
        ("/v1/alerts/-bad/report", REVIEWER, 422, "invalid_request"),
        ("/v1/alerts/al-0/report", CHANNEL, 403, None),
        ("/v1/follow-ups/fu-1/report", {}, 401, None),
        ("/v1/reports/alerts?outcome=maybe", REVIEWER, 422, "invalid_request"),
        ("/v1/reports/alerts?alert_type=Card%20Fraud", REVIEWER, 422, "invalid_request"),
        ("/v1/reports/alerts?from=2025-03-01T00:00:00", REVIEWER, 422, "invalid_request"),
        (
            "/v1/reports/alerts?from=2025-03-02T00:00:00Z&to=2025-03-01T00:00:00Z",
            REVIEWER,
            422,
            "invalid_range",
        ),
        ("/v1/reports/follow-ups?cursor=bm90LWEtY3Vyc29y", REVIEWER, 400, "invalid_cursor"),
        ("/v1/reports/follow-ups", CHANNEL, 403, None),
    ],
)
async def test_refusals_answer_the_error_body(
    api: httpx.AsyncClient, path: str, headers: dict[str, str], status: int, code: str | None
) -> None:
    r = await api.get(path, headers=headers)
    assert r.status_code == status, r.text
    assert r.json()["code"] and r.json()["message"]
    if code is not None:
        assert r.json()["code"] == code


async def test_the_alert_list_filters_and_pages(api: httpx.AsyncClient) -> None:
    r = await api.get("/v1/reports/alerts", params={"limit": 2}, headers=REVIEWER)
    assert r.status_code == 200, r.text
    assert [i["alert_id"] for i in r.json()["items"]] == ["al-0", "al-1"]
    cursor = r.json()["next_cursor"]
    r = await api.get("/v1/reports/alerts", params={"cursor": cursor}, headers=REVIEWER)
    assert ([i["alert_id"] for i in r.json()["items"]], r.json()["next_cursor"]) == (["al-2"], None)

    r = await api.get("/v1/reports/alerts", params={"outcome": "no_reply"}, headers=REVIEWER)
    assert [i["alert_id"] for i in r.json()["items"]] == ["al-1"]
    later = (T0 + timedelta(hours=1)).isoformat()
    r = await api.get(
        "/v1/reports/alerts",
        params={"from": later, "alert_type": "card_fraud_suspected"},
        headers=REVIEWER,
    )
    assert [i["alert_id"] for i in r.json()["items"]] == ["al-1", "al-2"]
    r = await api.get("/v1/reports/follow-ups", params={"outcome": "gave_up"}, headers=ADMIN)
    assert r.json() == {"items": [], "next_cursor": None}

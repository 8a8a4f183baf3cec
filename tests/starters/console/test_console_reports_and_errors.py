"""Console pages over a seeded SQLite database (no Temporal): the credit reports with their
filters, the dashboards per hour, and the error pages a person gets for a bad parameter or an
unknown page (while the API keeps answering in JSON)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import cast

import httpx
import pytest
from temporalio.client import Client

from fiflow.integrations.codec import new_key
from fiflow.integrations.database import create_db_engine, upgrade_database
from fiflow.integrations.metrics_store import MetricsStore
from fiflow.integrations.reports import CreditReportStore
from fiflow.integrations.settings import Settings
from fiflow.integrations.temporal import payload_codec
from fiflow.starters.api.app import create_app
from fiflow.starters.console import routes as console_routes
from tests.integrations.test_report_store import _report
from tests.starters.api.test_metrics_api import seed_reply_seconds
from tests.starters.console.test_console_pages import csrf_of, sign_in

T0 = datetime(2026, 3, 2, 10, 15, tzinfo=UTC)


@pytest.fixture
async def console(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[httpx.AsyncClient]:
    # Sealed at rest as the worker stores them: the console reads them with the key ring.
    monkeypatch.setenv("FIFLOW_PAYLOAD_KEYS", new_key())
    url = f"sqlite:///{tmp_path / 'fiflow.db'}"
    upgrade_database(url)
    settings = Settings(database_url=url)
    engine = create_db_engine(url)
    reports = CreditReportStore(engine, sealer=payload_codec(settings))
    for app_id, at, decision, product in (
        ("app-1", T0, "approved", "credit_card"),
        ("app-2", T0 + timedelta(days=1), "declined", "personal_loan"),
    ):
        # The body as the credit workflow writes it (the fields the pages show).
        body = {"application_id": app_id, "product": product, "decision": decision}
        reports.save(
            _report(app_id, completed_at=at, decision=decision, product=product, report=body)
        )
    seed_reply_seconds(MetricsStore(engine))
    engine.dispose()
    app = create_app(settings, client=cast(Client, object()))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://api"
    ) as c:
        yield c


def rows(page: str) -> list[str]:
    return re.findall(r'<a href="/console/reports/([^"]+)">', page)


async def test_credit_reports_list_filter_page_and_open(console: httpx.AsyncClient) -> None:
    await sign_in(console, "local-reviewer-1-key")

    assert rows((await console.get("/console/reports")).text) == ["app-1", "app-2"]
    declined = await console.get("/console/reports", params={"decision": "declined"})
    assert rows(declined.text) == ["app-2"]
    cards = await console.get("/console/reports", params={"product": "credit_card"})
    assert rows(cards.text) == ["app-1"]
    day_two = await console.get(
        "/console/reports", params={"from": "2026-03-03", "to": "2026-03-03"}
    )
    assert rows(day_two.text) == ["app-2"]
    for bad in ({"decision": "maybe"}, {"from": "2026-99-01"}, {"cursor": "not-ours"}):
        r = await console.get("/console/reports", params=bad)
        assert r.status_code == 200 and "Cannot list with that filter" in r.text, bad
        assert rows(r.text) == []

    one = await console.get("/console/reports/app-2")
    assert one.status_code == 200 and "application app-2" in one.text and "declined" in one.text
    assert (await console.get("/console/reports/app-9")).status_code == 404
    assert (await console.get("/console/reports/-bad")).status_code == 403


async def test_the_dashboard_per_hour_shows_the_aggregated_figures(
    console: httpx.AsyncClient,
) -> None:
    await sign_in(console, "local-reviewer-1-key")

    page = await console.get(
        "/console/dashboards", params={"period": "hour", "from": "2026-03-02", "to": "2026-03-02"}
    )

    assert page.status_code == 200
    figures = re.findall(
        r'<tr class="figure"[^>]*data-metric="([^"]+)"[^>]*data-count="(\d+)"', page.text
    )
    assert ("alert_reply_seconds", "3") in figures, figures
    backwards = await console.get(
        "/console/dashboards", params={"period": "hour", "from": "2026-03-05", "to": "2026-03-01"}
    )
    assert backwards.status_code == 200 and 'class="error"' in backwards.text


@pytest.mark.parametrize(
    ("path", "status", "field"),
    [
        ("/console/dashboards?period=fortnight", 422, "period"),
        ("/console/inbox?state=bogus", 422, "state"),
        ("/console/alerts?from=" + "9" * 40, 422, "from"),
        ("/console/results/alerts?cursor=" + "x" * 600, 422, "cursor"),
        ("/console/no-such-page", 404, None),
    ],
)
async def test_a_bad_parameter_or_page_gets_an_error_page_not_json(
    console: httpx.AsyncClient, path: str, status: int, field: str | None
) -> None:
    await sign_in(console, "local-reviewer-1-key")

    r = await console.get(path)

    assert r.status_code == status
    assert r.headers["content-type"].startswith("text/html")
    problem = re.search(r'data-testid="problem">([^<]+)<', r.text)
    assert problem, r.text
    if field is not None:
        assert problem[1].endswith(f": {field}.")
    assert 'data-testid="who"' in r.text  # still signed in: the nav stays


async def test_the_api_still_answers_bad_parameters_in_json(console: httpx.AsyncClient) -> None:
    r = await console.get(
        "/v1/metrics/summary",
        params={"period": "fortnight"},
        headers={"X-API-Key": "local-reviewer-key"},
    )
    assert r.status_code == 422
    assert r.json()["code"] == "invalid_request" and "period" in r.json()["message"]
    missing = await console.get("/v1/no-such-endpoint")
    assert missing.status_code == 404 and missing.json()["code"] == "not_found"


async def test_a_review_form_that_cannot_be_taken_is_refused_before_the_workflow(
    console: httpx.AsyncClient,
) -> None:
    # The app has no Temporal client here: each refusal must come before the review is sent.
    await sign_in(console, "local-reviewer-1-key")
    token = csrf_of((await console.get("/console/reports")).text)
    form = {"decision": "approve", "csrf": token}
    url = "/console/applications/app-1/review"

    not_a_number = await console.post(url, data={**form, "approved_amount": "four thousand"})
    assert not_a_number.status_code == 303
    assert "not+a+number" in not_a_number.headers["location"]
    too_much = await console.post(url, data={**form, "approved_amount": "-5"})
    assert too_much.status_code == 303 and "Not+sent" in too_much.headers["location"]
    unknown = await console.post(url, data={**form, "decision": "maybe"})
    assert unknown.status_code == 422 and 'data-testid="problem"' in unknown.text
    assert (await console.post(url, data={**form, "csrf": "forged"})).status_code == 403
    assert (await console.post("/console/applications/-bad/review", data=form)).status_code == 403

    # An admin may look but not review.
    console.cookies.clear()
    await sign_in(console, "local-admin-1-key")
    token = csrf_of((await console.get("/console/reports")).text)
    refused = await console.post(url, data={"decision": "decline", "csrf": token})
    assert refused.status_code == 403 and "reviewer" in refused.text


def test_the_console_loads_nothing_from_elsewhere() -> None:
    # Offline by design: every script, style and image is the console's own (no CDN).
    here = Path(console_routes.__file__).parent
    files = [*here.glob("templates/*.html"), *here.glob("static/*")]
    assert any(f.suffix == ".js" for f in files) and any(f.suffix == ".css" for f in files)
    external = re.compile(
        r"""(?:src|href|action)\s*=\s*["'](?:https?:)?//|url\(\s*["']?(?:https?:)?//"""
    )
    for f in files:
        found = external.search(f.read_text(encoding="utf-8"))
        assert found is None, f"{f.name} loads {found and found[0]}"

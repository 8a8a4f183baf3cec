"""The console's results-report pages for alerts and follow-ups, over a seeded SQLite store."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import cast

import httpx
import pytest
from temporalio.client import Client

from fiflow.integrations.codec import new_key
from fiflow.integrations.database import create_db_engine, upgrade_database
from fiflow.integrations.results_reports import ResultsReportStore
from fiflow.integrations.settings import Settings
from fiflow.integrations.temporal import payload_codec
from fiflow.starters.api.app import create_app
from tests.integrations.test_results_report_store import T0, alert, follow_up
from tests.starters.console.test_console_pages import sign_in


@pytest.fixture
async def console(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[httpx.AsyncClient]:
    # Sealed like the worker stores them: the console reads them with the same key ring.
    monkeypatch.setenv("FIFLOW_PAYLOAD_KEYS", new_key())
    url = f"sqlite:///{tmp_path / 'fiflow.db'}"
    upgrade_database(url)
    settings = Settings(database_url=url)
    engine = create_db_engine(url)
    store = ResultsReportStore(engine, sealer=payload_codec(settings))
    store.save(alert("al-1", T0), T0)
    store.save(alert("al-2", T0 + timedelta(hours=1), "no_reply"), T0)
    store.save(follow_up("fu-1"), T0)
    engine.dispose()
    app = create_app(settings, client=cast(Client, object()))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as c:
        yield c


async def test_staff_list_filter_and_open_alert_and_follow_up_reports(
    console: httpx.AsyncClient,
) -> None:
    assert (await console.get("/console/results/alerts")).status_code == 303  # sign in first
    await sign_in(console, "local-reviewer-1-key")

    reports = await console.get("/console/reports")
    assert 'href="/console/results/alerts"' in reports.text
    page = await console.get("/console/results/alerts")
    assert page.status_code == 200
    assert (
        "/console/results/alerts/al-1" in page.text and "/console/results/alerts/al-2" in page.text
    )
    filtered = await console.get("/console/results/alerts", params={"outcome": "no_reply"})
    assert "al-2" in filtered.text and "/console/results/alerts/al-1" not in filtered.text
    refused = await console.get("/console/results/alerts", params={"outcome": "maybe"})
    assert refused.status_code == 200 and "Cannot list with that filter" in refused.text

    one = await console.get("/console/results/alerts/al-1")
    assert one.status_code == 200
    assert 'data-testid="outcome">confirmed<' in one.text and "block_card" in one.text
    fu = await console.get("/console/results/follow-ups/fu-1")
    assert fu.status_code == 200 and 'data-testid="outcome">resolved<' in fu.text
    assert (
        "/console/results/follow-ups/fu-1"
        in (await console.get("/console/results/follow-ups")).text
    )

    assert (await console.get("/console/results/alerts/al-9")).status_code == 404
    assert (await console.get("/console/results/follow-ups/al-1")).status_code == 404
    assert (await console.get("/console/results/credit")).status_code == 404
    assert (await console.get("/console/results/alerts/-bad")).status_code == 403

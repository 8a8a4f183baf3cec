"""`GET /v1/metrics/summary` through the real app over a migrated SQLite database."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import cast

import httpx
import pytest
from temporalio.client import Client

from fiflow.domain.metrics import Metric, MetricEvent, PeriodKind
from fiflow.integrations.database import create_db_engine, upgrade_database
from fiflow.integrations.metrics_store import MetricsStore
from fiflow.integrations.settings import Settings
from fiflow.starters.api.app import create_app

REVIEWER = {"X-API-Key": "local-reviewer-key"}
T0 = datetime(2026, 3, 2, 10, 15, tzinfo=UTC)


def seed_reply_seconds(store: MetricsStore) -> None:
    """Three SMS replies (10, 20 and 30 s) at T0, folded into its hour and day."""
    store.record(
        [
            MetricEvent(
                key=f"alert-{n}:alert_reply_seconds",
                metric=Metric.ALERT_REPLY_SECONDS,
                labels={"type": "card_fraud_suspected", "channel": "sms"},
                occurred_at=T0,
                value=float(n),
            )
            for n in (10, 20, 30)
        ],
        T0,
    )
    store.aggregate([PeriodKind.HOUR, PeriodKind.DAY], T0)


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    url = f"sqlite:///{tmp_path / 'fiflow.db'}"
    upgrade_database(url)
    engine = create_db_engine(url)
    seed_reply_seconds(MetricsStore(engine))
    engine.dispose()
    app = create_app(Settings(database_url=url), client=cast(Client, object()))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://api"
    ) as client:
        yield client


async def test_the_summary_has_the_agreed_shape(api: httpx.AsyncClient) -> None:
    r = await api.get(
        "/v1/metrics/summary",
        params={"period": "hour", "from": "2026-03-02", "to": "2026-03-02"},
        headers=REVIEWER,
    )
    assert r.status_code == 200, r.text
    assert r.json() == {
        "period": "hour",
        "from": "2026-03-02T00:00:00Z",
        "to": "2026-03-03T00:00:00Z",
        "series": [
            {
                "metric": "alert_reply_seconds",
                "labels": {"channel": "sms", "type": "card_fraud_suspected"},
                "points": [
                    {"start": "2026-03-02T10:00:00Z", "count": 3, "sum": 60.0, "p50": 20.0,
                     "p95": 30.0}
                ],
            }
        ],
    }  # fmt: skip


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"period": "week"}, "invalid_request"),
        ({"from": "2026-03-02T10:00:00"}, "invalid_request"),  # no offset
        ({"from": "2026-03-05", "to": "2026-03-01"}, "invalid_range"),
        ({"period": "day", "from": "2026-01-01", "to": "2026-06-01"}, "invalid_range"),
        ({"period": "hour", "from": "2026-03-01", "to": "2026-03-10"}, "invalid_range"),
    ],
)
async def test_bad_periods_and_ranges_are_422(
    api: httpx.AsyncClient, params: dict[str, str], code: str
) -> None:
    r = await api.get("/v1/metrics/summary", params=params, headers=REVIEWER)
    assert r.status_code == 422 and r.json()["code"] == code, r.text

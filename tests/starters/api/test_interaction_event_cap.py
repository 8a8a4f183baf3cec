"""An interaction past its event cap: the API answers `rejected` with the reason and stores
nothing; the end of the call is still taken (the workflow side is tested on Temporal)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import httpx
from temporalio.client import Client

from fiflow.domain.interactions import MAX_EVENTS, EventType, takes_event
from fiflow.integrations.database import create_db_engine, upgrade_database
from fiflow.integrations.interactions_store import InteractionStore, StoredEvent
from fiflow.integrations.settings import Settings
from fiflow.starters.api import interactions
from fiflow.starters.api.app import create_app

CHANNEL = {"X-API-Key": "local-channel-key"}


def test_the_cap_takes_only_the_end_of_the_call() -> None:
    assert takes_event(MAX_EVENTS - 1, EventType.MENU_SELECTED)
    assert not takes_event(MAX_EVENTS, EventType.MENU_SELECTED)
    assert takes_event(MAX_EVENTS + 3, EventType.INTERACTION_ENDED)


async def test_an_event_past_the_cap_is_rejected_and_the_end_still_delivered(
    tmp_path: Path, monkeypatch: Any
) -> None:
    url = f"sqlite:///{tmp_path / 'fiflow.db'}"
    upgrade_database(url)
    engine = create_db_engine(url)
    store = InteractionStore(engine)
    now = datetime.now(UTC)
    for n in range(MAX_EVENTS):
        store.record_event(
            StoredEvent(
                event_id=f"e{n}",
                interaction_id="ia-long",
                type="menu_selected",
                occurred_at=now,
                accepted_at=now,
            )
        )
    delivered: list[str] = []

    async def deliver(_client: Any, _settings: Any, _inp: Any, event: Any) -> bool:
        delivered.append(event.event_id)
        return True

    async def customer_of(_state: Any, body: Any) -> str:
        return str(body.customer_id)  # no CRM here: the event names its customer

    monkeypatch.setattr(interactions, "deliver_event", deliver)
    monkeypatch.setattr(interactions, "_customer_of", customer_of)
    app = create_app(Settings(database_url=url), client=cast(Client, object()))
    body = {"event_id": "e-more", "customer_id": "cust-0001", "channel": "ivr",
            "type": "menu_selected", "occurred_at": now.isoformat()}  # fmt: skip
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as http:
        r = await http.post("/v1/interactions/ia-long/events", json=body, headers=CHANNEL)
        assert r.status_code == 202, r.text
        assert r.json()["status"] == "rejected"
        assert f"{MAX_EVENTS} events" in r.json()["reason"]
        assert store.event_count("ia-long") == MAX_EVENTS  # nothing stored
        assert delivered == []

        end = {**body, "event_id": "e-end", "type": "interaction_ended"}
        r = await http.post("/v1/interactions/ia-long/events", json=end, headers=CHANNEL)
        assert r.status_code == 202 and r.json()["status"] == "accepted", r.text
        assert delivered == ["e-end"]
    engine.dispose()

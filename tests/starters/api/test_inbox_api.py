"""The durable inbox from the API's side, with Temporal faked: queue, order, relay, settle."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from fiflow.domain.alerts import AlertStatus, CustomerReply
from fiflow.domain.customers import Channel
from fiflow.domain.push_binding import alert_push_key, push_reply_token
from fiflow.integrations.codec import new_key
from fiflow.integrations.database import create_db_engine
from fiflow.integrations.inbox import Inbox
from fiflow.integrations.message_ledger import MessageLedger
from fiflow.integrations.settings import Settings
from fiflow.integrations.temporal import payload_codec
from fiflow.integrations.twilio_signature import compute_signature
from fiflow.starters.api import channels, inbox_relay
from fiflow.starters.api.app import create_app
from fiflow.starters.api.inbox_relay import InboxRelay
from fiflow.starters.api.state import ApiState
from fiflow.starters.workflow_views import Lookup, View
from tests.fixtures.migrated_db import migrated_sqlite

URL = "http://api/v1/channels/sms/inbound"
PHONE = "+12025550143"
OTHER = "+12025550144"
CHANNEL_KEY = {"X-API-Key": "local-channel-key"}
DOWN = RPCError("connection refused", RPCStatusCode.UNAVAILABLE, b"")


class FakeTemporal:
    """Stands in for the deliver functions and the alert view: records, or fails while down."""

    def __init__(self) -> None:
        self.down = False
        self.slow = False
        self.sms: list[tuple[str, str]] = []  # (sender, message_id)
        self.push: list[tuple[str, str]] = []  # (alert_id, reply_id)
        self.alert = View(Lookup.RUNNING, AlertStatus(alert_id="al-1", alert_type="card_fraud",
                          customer_id="c-1", pushed_to=["dev-1"]))  # fmt: skip

    async def _gate(self) -> None:
        if self.slow:
            await asyncio.sleep(5)
        if self.down:
            raise DOWN

    async def deliver_sms(self, _client: Any, _settings: Any, **kw: Any) -> str:
        await self._gate()
        self.sms.append((kw["sender"], kw["message_id"]))
        return "conversation-id"

    async def alert_view(self, _client: Any, _alert_id: str) -> View[AlertStatus]:
        await self._gate()
        return self.alert

    async def deliver_push_reply(
        self, _client: Any, alert_id: str, _outcome: Any, reply_id: str, _at: datetime
    ) -> None:
        await self._gate()
        self.push.append((alert_id, reply_id))


@pytest.fixture
def temporal(monkeypatch: pytest.MonkeyPatch) -> FakeTemporal:
    fake = FakeTemporal()
    for module in (channels, inbox_relay):
        monkeypatch.setattr(module, "deliver_sms", fake.deliver_sms)
        monkeypatch.setattr(module, "alert_view", fake.alert_view)
        monkeypatch.setattr(module, "deliver_push_reply", fake.deliver_push_reply)
    return fake


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    url = f"sqlite:///{tmp_path / 'fiflow.db'}"
    migrated_sqlite(url)
    return Settings(
        database_url=url,
        payload_keys=new_key(),  # type: ignore[arg-type]
        inbox_deliver_timeout_seconds=0.3,
        inbox_relay=False,  # the tests run relay rounds themselves
    )


@pytest.fixture
async def app_state(settings: Settings) -> AsyncIterator[tuple[httpx.AsyncClient, ApiState]]:
    app = create_app(settings, client=cast(Client, object()))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://api"
    ) as c:
        yield c, app.state.fiflow


def _inbox(settings: Settings) -> Inbox:
    return Inbox(create_db_engine(settings.database_url), payload_codec(settings))


async def _sms(api: httpx.AsyncClient, sid: str, phone: str = PHONE) -> httpx.Response:
    form = {"AccountSid": Settings().sms_account_sid, "From": phone, "Body": f"YES {sid}",
            "MessageSid": sid}  # fmt: skip
    signature = compute_signature(Settings().sms_auth_token.get_secret_value(), URL, form)
    r = await api.post(URL, data=form, headers={"X-Twilio-Signature": signature})
    return r


async def test_sms_is_queued_answered_200_and_a_retry_is_not_queued_twice(
    app_state: tuple[httpx.AsyncClient, ApiState], temporal: FakeTemporal, settings: Settings
) -> None:
    api, _ = app_state
    temporal.down = True
    r = await _sms(api, "SM1")
    assert r.status_code == 200 and "<Response></Response>" in r.text
    assert (await _sms(api, "SM1")).status_code == 200  # the provider's retry

    inbox = _inbox(settings)
    [queued] = inbox.pending()
    assert (queued.channel, queued.message_id) == ("sms", "SM1")
    assert queued.content["sender"] == PHONE and queued.content["body"] == "YES SM1"
    assert MessageLedger(create_db_engine(settings.database_url)).seen("SM1")
    assert temporal.sms == []


async def test_a_hanging_temporal_is_given_up_on_within_the_timeout(
    app_state: tuple[httpx.AsyncClient, ApiState], temporal: FakeTemporal, settings: Settings
) -> None:
    api, _ = app_state
    temporal.slow = True
    started = asyncio.get_running_loop().time()
    assert (await _sms(api, "SMslow")).status_code == 200
    assert asyncio.get_running_loop().time() - started < 2
    assert [m.message_id for m in _inbox(settings).pending()] == ["SMslow"]


async def test_later_messages_of_a_queued_sender_queue_behind_and_relay_in_order(
    app_state: tuple[httpx.AsyncClient, ApiState], temporal: FakeTemporal, settings: Settings
) -> None:
    api, state = app_state
    temporal.down = True
    await _sms(api, "SM1")
    temporal.down = False
    # Temporal is back, but SM1 still waits: SM2 of the same sender must not overtake it.
    await _sms(api, "SM2")
    await _sms(api, "SM3", phone=OTHER)
    assert temporal.sms == [(OTHER, "SM3")]
    assert [m.message_id for m in _inbox(settings).pending()] == ["SM1", "SM2"]

    relay = InboxRelay.for_state(state)
    temporal.down = True
    assert await relay.run_once() is False  # still down: nothing delivered, one attempt
    [first, _] = _inbox(settings).pending()
    assert first.attempts == 1 and temporal.sms == [(OTHER, "SM3")]

    temporal.down = False
    assert await relay.run_once() is True
    assert temporal.sms == [(OTHER, "SM3"), (PHONE, "SM1"), (PHONE, "SM2")]
    assert _inbox(settings).pending() == []
    assert await relay.run_once() is True  # nothing left: nothing delivered again
    assert len(temporal.sms) == 3


async def test_push_reply_is_queued_202_and_relayed_after_the_alert_checks(
    app_state: tuple[httpx.AsyncClient, ApiState], temporal: FakeTemporal, settings: Settings
) -> None:
    api, state = app_state
    key = alert_push_key(settings.push_token_key.get_secret_value(), "al-1")
    body = {"alert_id": "al-1", "action": "confirm", "device_id": "dev-1",
            "token": push_reply_token(key, "dev-1"), "reply_id": "tap-1"}  # fmt: skip
    temporal.down = True
    r = await api.post("/v1/channels/push/replies", json=body, headers=CHANNEL_KEY)
    assert r.status_code == 202, r.text
    assert r.json() == {"alert_id": "al-1", "status_url": "/v1/alerts/al-1", "delivery": "queued"}
    # A bad token is still refused while Temporal is down: only a proven device queues.
    bad = await api.post(
        "/v1/channels/push/replies", json={**body, "token": "x" * 20}, headers=CHANNEL_KEY
    )
    assert bad.status_code == 403

    temporal.down = False
    assert await InboxRelay.for_state(state).run_once() is True
    assert temporal.push == [("al-1", "tap-1")]
    delivered = await api.post(
        "/v1/channels/push/replies", json={**body, "reply_id": "tap-2"}, headers=CHANNEL_KEY
    )
    assert delivered.json()["delivery"] == "delivered"


async def test_a_queued_push_reply_to_an_alert_that_closed_is_settled_unsent(
    app_state: tuple[httpx.AsyncClient, ApiState], temporal: FakeTemporal, settings: Settings
) -> None:
    api, state = app_state
    key = alert_push_key(settings.push_token_key.get_secret_value(), "al-1")
    body = {"alert_id": "al-1", "action": "contest", "device_id": "dev-1",
            "token": push_reply_token(key, "dev-1"), "reply_id": "tap-9"}  # fmt: skip
    temporal.down = True
    assert (await api.post("/v1/channels/push/replies", json=body, headers=CHANNEL_KEY)).is_success

    temporal.down = False
    assert temporal.alert.status is not None
    temporal.alert.status.reply = CustomerReply(
        outcome="confirm", channel=Channel.SMS, message_id="SMearlier",
        received_at=datetime.now(UTC), routed_by="reply code 1234",
    )  # fmt: skip
    assert await InboxRelay.for_state(state).run_once() is True
    assert temporal.push == []
    inbox = _inbox(settings)
    assert inbox.pending() == []

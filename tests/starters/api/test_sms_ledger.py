"""The SMS webhook and the MessageSid ledger, with delivery faked: what is delivered, recorded."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
import sqlalchemy as sa
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from fiflow.integrations.database import create_db_engine, upgrade_database
from fiflow.integrations.message_ledger import MessageLedger
from fiflow.integrations.settings import Settings
from fiflow.integrations.twilio_signature import compute_signature
from fiflow.starters.api import channels
from fiflow.starters.api.app import create_app
from fiflow.starters.api.errors import ApiError

URL = "http://api/v1/channels/sms/inbound"
PHONE = "+12025550143"


class FakeDelivery:
    """Stands in for deliver_sms: counts deliveries, and fails while told to."""

    def __init__(self) -> None:
        self.message_ids: list[str] = []
        self.failing = False
        self.error: Exception = ApiError(
            503, "temporal_unavailable", "the workflow service is unavailable"
        )

    async def __call__(self, _client: Any, _settings: Any, **kwargs: Any) -> str:
        if self.failing:
            raise self.error
        self.message_ids.append(kwargs["message_id"])
        return "conversation-id"


@pytest.fixture
def delivery(monkeypatch: pytest.MonkeyPatch) -> FakeDelivery:
    fake = FakeDelivery()
    monkeypatch.setattr(channels, "deliver_sms", fake)
    return fake


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'fiflow.db'}"
    upgrade_database(url)
    return url


@pytest.fixture
async def api(db_url: str) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(Settings(database_url=db_url), client=cast(Client, object()))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://api"
    ) as c:
        yield c


async def _post(api: httpx.AsyncClient, sid: str) -> httpx.Response:
    form = {"AccountSid": Settings().sms_account_sid, "From": PHONE, "Body": "YES 1234",
            "MessageSid": sid}  # fmt: skip
    signature = compute_signature(Settings().sms_auth_token.get_secret_value(), URL, form)
    return await api.post(URL, data=form, headers={"X-Twilio-Signature": signature})


def _ledger_seen(db_url: str, sid: str) -> bool:
    engine = create_db_engine(db_url)
    try:
        return MessageLedger(engine).seen(sid)
    finally:
        engine.dispose()


async def test_a_replay_is_answered_but_not_delivered(
    api: httpx.AsyncClient, delivery: FakeDelivery, db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    first = await _post(api, "SMone")
    assert first.status_code == 200 and "<Response></Response>" in first.text
    assert _ledger_seen(db_url, "SMone")

    with caplog.at_level("INFO", logger="fiflow.api"):
        replay = await _post(api, "SMone")

    assert replay.status_code == 200 and replay.text == first.text
    assert delivery.message_ids == ["SMone"]
    dropped = [r.getMessage() for r in caplog.records if "replayed MessageSid" in r.getMessage()]
    assert dropped == ["replayed MessageSid dropped: SMone"]
    assert PHONE not in caplog.text

    assert (await _post(api, "SMtwo")).status_code == 200
    assert delivery.message_ids == ["SMone", "SMtwo"]


async def test_a_failed_delivery_is_not_recorded_so_the_retry_gets_through(
    api: httpx.AsyncClient, delivery: FakeDelivery, db_url: str
) -> None:
    # Temporal refusing the call (not merely unreachable: that one queues in the inbox).
    delivery.failing = True
    delivery.error = RPCError("refused", RPCStatusCode.INTERNAL, b"")
    failed = await _post(api, "SMretry")
    assert failed.status_code == 502
    assert not _ledger_seen(db_url, "SMretry")

    delivery.failing = False
    assert (await _post(api, "SMretry")).status_code == 200
    assert delivery.message_ids == ["SMretry"]
    assert _ledger_seen(db_url, "SMretry")


async def test_without_the_ledger_the_message_is_delivered_anyway(
    api: httpx.AsyncClient, delivery: FakeDelivery, db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    # The ledger table gone stands in for a database that cannot answer.
    engine = create_db_engine(db_url)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE sms_message_ledger"))
    engine.dispose()

    with caplog.at_level("WARNING", logger="fiflow.api"):
        r = await _post(api, "SMnodb")

    assert r.status_code == 200
    assert delivery.message_ids == ["SMnodb"]
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any("ledger check failed" in w for w in warnings), warnings
    assert any("ledger record failed" in w for w in warnings), warnings

"""The Twilio-compatible Messages API, driven by the real twilio client library."""

from __future__ import annotations

import asyncio
import re
from datetime import datetime
from typing import Any

import httpx
import pytest
from twilio.base.exceptions import TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client

from tests.sandbox.conftest import ACCOUNT_SID, AUTH_TOKEN, SMS_FROM

MESSAGES = f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"


class SandboxHttpClient(TwilioHttpClient):
    """Twilio's own HTTP client, sending to the sandbox instead of api.twilio.com."""

    def __init__(self, base_url: str) -> None:
        super().__init__(timeout=10)
        self.base_url = base_url

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Response:
        url = url.replace("https://api.twilio.com", self.base_url)
        return super().request(method, url, *args, **kwargs)


def twilio_client(sandbox_url: str, token: str = AUTH_TOKEN) -> Client:
    """A twilio.rest.Client pointed at the sandbox."""
    return Client(ACCOUNT_SID, token, http_client=SandboxHttpClient(sandbox_url))


async def test_twilio_client_sends_sms(sandbox: httpx.AsyncClient, sandbox_url: str) -> None:
    client = twilio_client(sandbox_url)
    message = await asyncio.to_thread(
        client.messages.create, to="+12025550101", from_=SMS_FROM, body="YES 123?"
    )
    assert re.fullmatch(r"SM[0-9a-f]{32}", message.sid or "")
    assert message.status == "queued" and message.direction == "outbound-api"
    assert message.to == "+12025550101" and message.from_ == SMS_FROM
    assert message.account_sid == ACCOUNT_SID and message.num_segments == "1"
    assert isinstance(message.date_created, datetime) and message.date_created.tzinfo
    assert message.uri == f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages/{message.sid}.json"

    outbox = (await sandbox.get("/__sandbox/sms/outbox")).json()
    assert [(m["sid"], m["to"], m["from"], m["body"]) for m in outbox] == [
        (message.sid, "+12025550101", SMS_FROM, "YES 123?")
    ]
    assert outbox[0]["sent_at"].endswith("Z")
    recorded = (await sandbox.get("/__sandbox/calls", params={"system": "sms"})).json()
    assert recorded[0]["body"] == {"To": "+12025550101", "From": SMS_FROM, "Body": "YES 123?"}


async def test_twilio_client_bad_token_is_401(sandbox: httpx.AsyncClient, sandbox_url: str) -> None:
    client = twilio_client(sandbox_url, token="wrong")
    with pytest.raises(TwilioRestException) as raised:
        await asyncio.to_thread(client.messages.create, to="+12025550101", from_=SMS_FROM, body="x")
    assert raised.value.status == 401 and raised.value.code == 20003
    assert (await sandbox.get("/__sandbox/sms/outbox")).json() == []


async def test_missing_auth_and_wrong_account(sandbox: httpx.AsyncClient) -> None:
    form = {"To": "+12025550101", "From": SMS_FROM, "Body": "hi"}
    missing = await sandbox.post(MESSAGES, data=form)
    assert missing.status_code == 401
    assert missing.json() == {
        "code": 20003,
        "message": "Authenticate",
        "more_info": "https://www.twilio.com/docs/errors/20003",
        "status": 401,
    }
    other = MESSAGES.replace(ACCOUNT_SID, "AC" + "f" * 32)
    wrong = await sandbox.post(other, data=form, auth=(ACCOUNT_SID, AUTH_TOKEN))
    assert wrong.status_code == 404 and wrong.json()["code"] == 20404
    recorded = (await sandbox.get("/__sandbox/calls", params={"system": "sms"})).json()
    assert [c["status_code"] for c in recorded] == [401, 404]


@pytest.mark.parametrize(
    ("form", "code"),
    [
        ({"To": "5550000001", "From": SMS_FROM, "Body": "hi"}, 21211),
        ({"From": SMS_FROM, "Body": "hi"}, 21604),
        ({"To": "+12025550101", "Body": "hi"}, 21603),
        ({"To": "+12025550101", "From": SMS_FROM}, 21602),
    ],
)
async def test_invalid_message_is_400(
    sandbox: httpx.AsyncClient, form: dict[str, str], code: int
) -> None:
    response = await sandbox.post(MESSAGES, data=form, auth=(ACCOUNT_SID, AUTH_TOKEN))
    assert response.status_code == 400
    assert response.json()["code"] == code and response.json()["status"] == 400


async def test_sms_idempotency_and_segments(sandbox: httpx.AsyncClient) -> None:
    form = {"To": "+12025550103", "From": SMS_FROM, "Body": "a" * 161}
    headers = {"Idempotency-Key": "alert-9/notify"}
    auth = (ACCOUNT_SID, AUTH_TOKEN)
    first = await sandbox.post(MESSAGES, data=form, headers=headers, auth=auth)
    second = await sandbox.post(MESSAGES, data=form, headers=headers, auth=auth)
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json() and first.json()["num_segments"] == "2"
    outbox = (await sandbox.get("/__sandbox/sms/outbox", params={"to": "+12025550103"})).json()
    assert len(outbox) == 1
    replayed = await sandbox.get("/__sandbox/calls", params={"idempotency_key": "alert-9/notify"})
    assert [c["replayed"] for c in replayed.json()] == [False, True]

    emoji = {"To": "+12025550103", "From": SMS_FROM, "Body": "🙂" * 40}
    unicode_reply = await sandbox.post(MESSAGES, data=emoji, auth=auth)
    assert unicode_reply.json()["num_segments"] == "2"  # 80 UCS-2 units > 70


async def test_outbox_filter_by_recipient(sandbox: httpx.AsyncClient) -> None:
    auth = (ACCOUNT_SID, AUTH_TOKEN)
    for to, body in [("+12025550101", "one"), ("+12025550102", "two"), ("+12025550101", "three")]:
        sent = await sandbox.post(
            MESSAGES, data={"To": to, "From": SMS_FROM, "Body": body}, auth=auth
        )
        assert sent.status_code == 201
    first = (await sandbox.get("/__sandbox/sms/outbox", params={"to": "+12025550101"})).json()
    assert [m["body"] for m in first] == ["one", "three"]
    second = (await sandbox.get("/__sandbox/sms/outbox?to=+12025550102")).json()
    assert [m["body"] for m in second] == ["two"]
    everyone = (await sandbox.get("/__sandbox/sms/outbox")).json()
    assert [m["body"] for m in everyone] == ["one", "two", "three"]
    assert (await sandbox.get("/__sandbox/sms/outbox", params={"to": "+12025550199"})).json() == []

"""Customer replies delivered to the webhook, signed exactly as Twilio signs them."""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlsplit

import httpx
from twilio.request_validator import RequestValidator

from fiflow.sandbox.app import create_app
from fiflow.sandbox.config import SandboxConfig
from fiflow.sandbox.twilio_signature import compute_signature
from tests.sandbox.conftest import ACCOUNT_SID, AUTH_TOKEN, SMS_FROM
from tests.sandbox.servers import WebhookReceiver, app_in_thread, free_port


async def test_inbound_is_signed_like_twilio(
    sandbox: httpx.AsyncClient, receiver: WebhookReceiver
) -> None:
    response = await sandbox.post(
        "/__sandbox/sms/inbound", json={"from": "+12025550101", "body": "YES 4821 café"}
    )
    assert response.status_code == 200
    result = response.json()
    assert re.fullmatch(r"SM[0-9a-f]{32}", result["message_sid"])
    assert result["webhook_status"] == 200 and "<Response/>" in result["webhook_body"]

    [delivered] = receiver.requests
    assert delivered.path == urlsplit(receiver.url).path
    assert delivered.headers["content-type"] == "application/x-www-form-urlencoded"
    params = dict(parse_qsl(delivered.body.decode(), keep_blank_values=True))
    assert params["From"] == "+12025550101" and params["To"] == SMS_FROM
    assert params["Body"] == "YES 4821 café" and params["MessageSid"] == result["message_sid"]
    assert params["AccountSid"] == ACCOUNT_SID and params["NumMedia"] == "0"

    validator = RequestValidator(AUTH_TOKEN)
    signature = delivered.headers["x-twilio-signature"]
    assert validator.validate(receiver.url, params, signature) is True
    assert validator.validate(receiver.url, {**params, "Body": "NO 4821"}, signature) is False
    assert RequestValidator("other-token").validate(receiver.url, params, signature) is False

    recorded = (await sandbox.get("/__sandbox/calls", params={"system": "sms"})).json()
    assert [(c["method"], c["status_code"]) for c in recorded] == [("WEBHOOK", 200)]
    assert recorded[0]["body"] == params


async def test_given_message_sid_is_reused(
    sandbox: httpx.AsyncClient, receiver: WebhookReceiver
) -> None:
    reply = {
        "from": "+12025550102",
        "body": "NO",
        "message_sid": "SM" + "ab" * 16,
        "to": "+15550100001",
    }
    for _ in range(2):
        response = await sandbox.post("/__sandbox/sms/inbound", json=reply)
        assert response.json()["message_sid"] == reply["message_sid"]
    sids = [dict(parse_qsl(r.body.decode()))["MessageSid"] for r in receiver.requests]
    assert sids == [reply["message_sid"]] * 2
    assert dict(parse_qsl(receiver.requests[0].body.decode()))["To"] == "+15550100001"

    fresh = await sandbox.post("/__sandbox/sms/inbound", json={"from": "+12025550102", "body": "x"})
    assert fresh.json()["message_sid"] != reply["message_sid"]


async def test_inbound_validation(sandbox: httpx.AsyncClient, receiver: WebhookReceiver) -> None:
    response = await sandbox.post(
        "/__sandbox/sms/inbound", json={"from": "5550000001", "body": "x"}
    )
    assert response.status_code == 422 and response.json()["code"] == "invalid_request"
    assert receiver.requests == []


def test_signature_matches_twilio_reference() -> None:
    url = "https://example.com/hook?x=1"
    params = {"To": "+15550100000", "Body": "hi there", "From": "+12025550101"}
    expected = RequestValidator("token").compute_signature(url, params)
    assert compute_signature("token", url, params) == expected


async def test_unreachable_webhook_is_502() -> None:
    config = SandboxConfig(sms_webhook_url=f"http://127.0.0.1:{free_port()}/hook")
    with app_in_thread(create_app(config)) as url:
        async with httpx.AsyncClient(base_url=url, timeout=10) as client:
            response = await client.post(
                "/__sandbox/sms/inbound", json={"from": "+12025550101", "body": "YES"}
            )
            assert response.status_code == 502
            assert response.json()["code"] == "webhook_unreachable"
            recorded = (await client.get("/__sandbox/calls")).json()
            assert [(c["method"], c["status_code"]) for c in recorded] == [("WEBHOOK", 502)]

"""Twilio Messages API details: auth, segment counting and the message resource."""

from __future__ import annotations

import base64
import binascii
import hmac
import math
from datetime import UTC, datetime
from typing import Any

from fiflow.sandbox.errors import TwilioError
from fiflow.sandbox.phones import is_e164
from fiflow.sandbox.timeutil import rfc2822

API_VERSION = "2010-04-01"
GSM_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM_EXTENDED = "^{}\\[~]|€\f"
_GSM_BASIC = frozenset(GSM_BASIC)
_GSM_EXTENDED = frozenset(GSM_EXTENDED)


def check_basic_auth(authorization: str | None, account_sid: str, auth_token: str) -> None:
    """Raise Twilio's 401 (20003) unless the header is Basic AccountSid:AuthToken."""
    scheme, _, encoded = (authorization or "").partition(" ")
    try:
        user, _, password = base64.b64decode(encoded, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        user = password = ""
    if not (
        scheme.lower() == "basic"
        and hmac.compare_digest(user.encode(), account_sid.encode())
        and hmac.compare_digest(password.encode(), auth_token.encode())
    ):
        raise TwilioError(
            401, 20003, "Authenticate", headers={"WWW-Authenticate": 'Basic realm="Twilio API"'}
        )


def num_segments(body: str) -> int:
    """How many SMS segments the body needs (GSM-7 when it fits, else UCS-2)."""
    if all(ch in _GSM_BASIC or ch in _GSM_EXTENDED for ch in body):
        units = len(body) + sum(ch in _GSM_EXTENDED for ch in body)
        single, multi = 160, 153
    else:
        units = len(body.encode("utf-16-le")) // 2
        single, multi = 70, 67
    return 1 if units <= single else math.ceil(units / multi)


def validate_message(params: dict[str, str]) -> None:
    """Raise the 400 Twilio answers for a Messages.json form it would refuse."""
    to = params.get("To", "")
    if not to:
        raise TwilioError(400, 21604, "A 'To' phone number is required.")
    if not is_e164(to):
        raise TwilioError(400, 21211, f"Invalid 'To' Phone Number: {to}")
    if not params.get("From") and not params.get("MessagingServiceSid"):
        raise TwilioError(400, 21603, "A 'From' phone number is required.")
    body = params.get("Body", "")
    if not body:
        raise TwilioError(400, 21602, "Message body is required.")
    if len(body) > 1600:
        raise TwilioError(400, 21617, "The concatenated message body exceeds the 1600 limit.")


def message_resource(
    *, sid: str, account_sid: str, to: str, from_: str, body: str, messaging_service_sid: str | None
) -> dict[str, Any]:
    """The JSON Twilio returns for a newly queued outbound message."""
    now = rfc2822(datetime.now(UTC))
    uri = f"/{API_VERSION}/Accounts/{account_sid}/Messages/{sid}.json"
    return {
        "account_sid": account_sid,
        "api_version": API_VERSION,
        "body": body,
        "date_created": now,
        "date_sent": None,
        "date_updated": now,
        "direction": "outbound-api",
        "error_code": None,
        "error_message": None,
        "from": from_,
        "messaging_service_sid": messaging_service_sid,
        # Twilio sends these counts as strings.
        "num_media": "0",
        "num_segments": str(num_segments(body)),
        "price": None,
        "price_unit": "USD",
        "sid": sid,
        "status": "queued",
        "subresource_uris": {
            "media": f"/{API_VERSION}/Accounts/{account_sid}/Messages/{sid}/Media.json"
        },
        "to": to,
        "uri": uri,
    }

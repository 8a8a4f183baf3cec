"""Twilio's webhook signature (X-Twilio-Signature), computed the way Twilio documents it."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping


def compute_signature(auth_token: str, url: str, params: Mapping[str, str]) -> str:
    """Base64 HMAC-SHA1, keyed by the auth token, of the URL then each POST name+value by name."""
    payload = url + "".join(f"{name}{params[name]}" for name in sorted(params))
    digest = hmac.new(auth_token.encode(), payload.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")

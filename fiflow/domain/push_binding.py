"""Push reply tokens: bound to one alert and one device, checkable without any stored state.

The API derives a per-alert key from its secret (`FIFLOW_PUSH_TOKEN_KEY`) and gives the alert
only that derived key; the workflow turns it into the token for the device it pushes to. So
the secret never enters a workflow history, and a derived key there can speak for its own
alert only (as the SMS reply code in the same history can).
"""

from __future__ import annotations

import base64
import hashlib
import hmac


def alert_push_key(secret: str, alert_id: str) -> str:
    """The per-alert key the alert's workflow gets (hex)."""
    return hmac.new(secret.encode(), b"push-alert:" + alert_id.encode(), hashlib.sha256).hexdigest()


def push_reply_token(alert_key: str, device_id: str) -> str:
    """The token a push to `device_id` carries; the app sends it back with the reply."""
    mac = hmac.new(alert_key.encode(), b"push-device:" + device_id.encode(), hashlib.sha256)
    return base64.urlsafe_b64encode(mac.digest()).decode().rstrip("=")


def push_token_is_valid(secret: str, alert_id: str, device_id: str, token: str) -> bool:
    """Whether `token` is the one fiflow gave to `device_id` for this alert (constant time)."""
    expected = push_reply_token(alert_push_key(secret, alert_id), device_id)
    return hmac.compare_digest(expected.encode(), token.encode())

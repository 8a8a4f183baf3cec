"""Twilio webhook signatures (X-Twilio-Signature), computed the way Twilio documents them."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping, Sequence
from urllib.parse import urlsplit


def compute_signature(auth_token: str, url: str, params: Mapping[str, str | Sequence[str]]) -> str:
    """Base64 HMAC-SHA1 over the URL followed by each POST parameter name and value, by name."""
    payload = url
    for name in sorted(params):
        value = params[name]
        values = [value] if isinstance(value, str) else sorted(value)
        for v in values:
            payload += name + v
    digest = hmac.new(auth_token.encode(), payload.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


_DEFAULT_PORTS = {"https": 443, "http": 80}


def _default_port_variants(url: str) -> set[str]:
    """The URL as given, plus the same URL with its default port written out or left off."""
    parts = urlsplit(url)
    default = _DEFAULT_PORTS.get(parts.scheme)
    head = url[: len(parts.scheme) + 3]
    if default is None or not head.endswith("://") or not url[len(head) :].startswith(parts.netloc):
        return {url}
    tail = url[len(head) + len(parts.netloc) :]
    try:
        port = parts.port
    except ValueError:
        return {url}
    if port is None:
        return {url, f"{head}{parts.netloc}:{default}{tail}"}
    if port == default:
        return {url, head + parts.netloc.rsplit(":", 1)[0] + tail}
    return {url}


def is_valid_signature(
    auth_token: str, url: str, params: Mapping[str, str | Sequence[str]], signature: str | None
) -> bool:
    """Constant-time check of a webhook's signature (with and without a default port)."""
    if not signature:
        return False
    # Twilio signs some webhooks with ":443"/":80" written out and some without, whatever the
    # URL looks like on arrival (RequestValidator accepts both forms for the same reason).
    for candidate in _default_port_variants(url):
        expected = compute_signature(auth_token, candidate, params)
        if hmac.compare_digest(expected, signature):
            return True
    return False

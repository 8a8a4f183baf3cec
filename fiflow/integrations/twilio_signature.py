"""Twilio webhook signatures (X-Twilio-Signature), computed the way Twilio documents them."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping, Sequence


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


def _without_default_port(url: str) -> str:
    for scheme, port in (("https://", ":443"), ("http://", ":80")):
        if url.startswith(scheme):
            host, slash, rest = url[len(scheme) :].partition("/")
            if host.endswith(port):
                return scheme + host[: -len(port)] + slash + rest
    return url


def is_valid_signature(
    auth_token: str, url: str, params: Mapping[str, str | Sequence[str]], signature: str | None
) -> bool:
    """Constant-time check of a webhook's signature (with and without a default port)."""
    if not signature:
        return False
    for candidate in {url, _without_default_port(url)}:
        expected = compute_signature(auth_token, candidate, params)
        if hmac.compare_digest(expected, signature):
            return True
    return False

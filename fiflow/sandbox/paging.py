"""Opaque page cursors: base64url JSON that callers must hand back unchanged."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from fiflow.sandbox.errors import SandboxError


def encode_cursor(fields: dict[str, Any]) -> str:
    """A cursor carrying `fields`."""
    raw = json.dumps(fields, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def invalid_cursor(detail: str) -> SandboxError:
    """The 400 answered for a cursor this system did not issue for this query."""
    return SandboxError(400, "invalid_cursor", f"Invalid cursor: {detail}.")


def decode_cursor(cursor: str) -> dict[str, Any]:
    """The fields of a cursor from `encode_cursor`; 400 invalid_cursor otherwise."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        fields = json.loads(raw)
    except (binascii.Error, ValueError) as exc:
        raise invalid_cursor("not a cursor issued by this system") from exc
    if not isinstance(fields, dict):
        raise invalid_cursor("not a cursor issued by this system")
    return fields

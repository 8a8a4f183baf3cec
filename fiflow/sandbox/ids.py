"""Generated identifiers.

They come from uuid4, not the seed: a restarted sandbox must never reissue an ID (a
MessageSid above all) that a long-lived workflow has already seen and would deduplicate.
"""

from __future__ import annotations

import uuid


def new_id(prefix: str) -> str:
    """A unique ID such as "case-3f2a9c1b7e4d5a60"."""
    return f"{prefix}-{uuid.uuid4().hex[:16]}"


def message_sid() -> str:
    """A Twilio-style message SID: "SM" and 32 hex digits."""
    return "SM" + uuid.uuid4().hex

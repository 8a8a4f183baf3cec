"""Shipped rules with their waits cut to seconds, for e2e tests that go through them."""

from __future__ import annotations

from typing import Any


def quick_triggers(data: dict[str, Any], give_up_after: str) -> dict[str, Any]:
    """The triggers rule set `data`, changed in place: seconds instead of days, no hours limits."""
    data["grace_period"] = "PT1S"
    for trigger in data["triggers"]:
        trigger.pop("only_during", None)
        for action in trigger["actions"]:
            if action["type"] == "start_follow_up":
                action["after"] = "PT2S"
    data["follow_up"].update(
        business_hours=None,
        quiet_hours=None,
        max_attempts=1,
        attempt_window="P1D",
        retry_after="PT2S",
        give_up_after=give_up_after,
    )
    return data

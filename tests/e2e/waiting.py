"""Polling with a deadline: the e2e tests' one way to wait for state (no sleeps)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any


async def eventually(
    get: Callable[[], Awaitable[Any]], ok: Callable[[Any], bool], within: float = 20.0
) -> Any:
    """Poll until `ok(value)`; fail with the last value seen."""
    deadline = time.monotonic() + within
    value = await get()
    while not ok(value):
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached within {within}s; last value: {value!r}")
        await asyncio.sleep(0.1)
        value = await get()
    return value


def until(check: Callable[[], Any], what: str, within: float) -> Any:
    """Call `check` until it returns something truthy and return that; fail naming `what`."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"not within {within}s: {what}")

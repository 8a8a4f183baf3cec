"""Long-polling for the inspection endpoints: wake a reader when its list grows.

Tests and the benchmark wait for a message or a call to appear; with `wait` they hold one
request open instead of polling, which keeps the sandbox's load flat however many flows
are waiting (a poll loop per waiting flow is what saturated it under load).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any

MAX_WAIT_SECONDS = 30.0


class KeyedWakeups:
    """Readers wait on a key; a writer wakes every reader of the keys it touched."""

    def __init__(self) -> None:
        self._waiting: dict[str, set[asyncio.Future[None]]] = defaultdict(set)

    def notify(self, keys: Iterable[str]) -> None:
        """Something under these keys changed."""
        for key in keys:
            for future in self._waiting.pop(key, set()):
                if not future.done():
                    future.set_result(None)

    async def wait(self, key: str) -> None:
        """Until the key is notified (callers bound it with `asyncio.timeout`)."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        waiting = self._waiting[key]
        waiting.add(future)
        try:
            await future
        finally:
            waiting.discard(future)
            if not waiting and self._waiting.get(key) is waiting:
                del self._waiting[key]


async def read_past(
    read: Callable[[], list[dict[str, Any]]],
    wakeups: KeyedWakeups,
    key: str,
    after: int,
    wait: float,
) -> list[dict[str, Any]]:
    """The items past the first `after`, waiting up to `wait` seconds for there to be any."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + min(wait, MAX_WAIT_SECONDS)
    items = read()
    while len(items) <= after:
        remaining = deadline - loop.time()
        if remaining <= 0:
            break
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(remaining):
                await wakeups.wait(key)
        items = read()
    return items[after:]

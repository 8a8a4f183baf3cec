"""Finding the knee: the highest rate whose step passes its p99 gates.

The rate doubles from a start rate until a step fails (or the cap passes), then the gap
between the last pass and the first failure is bisected a few times. When the start rate
already fails, the rate halves instead, a few times. Each step is a fixed-length run; the
caller decides what passing means. Pure logic: `try_rate` does the work, so it can be
tested on a synthetic latency curve.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")
DOWN_STEPS = 3


@dataclass
class KneeResult(Generic[T]):
    """What the search found: the knee (None when nothing passed) and every step run."""

    knee: float | None = None
    first_fail: float | None = None  # the lowest failing rate above the knee
    capped: bool = False  # the maximum rate passed: the real knee is higher
    steps: list[tuple[float, bool, T]] = field(default_factory=list)

    def at(self, rate: float | None) -> T | None:
        """The step run at that rate (the last one, if several)."""
        found = [result for r, _, result in self.steps if r == rate]
        return found[-1] if found else None


async def find_knee(
    try_rate: Callable[[float], Awaitable[T]],
    passed: Callable[[T], bool],
    start: float,
    max_rate: float,
    bisect_steps: int = 3,
    resolution: float = 0.1,
) -> KneeResult[T]:
    """Step the rate up (doubling, then bisecting) until the knee is within `resolution`."""
    out: KneeResult[T] = KneeResult()

    async def attempt(rate: float) -> bool:
        result = await try_rate(rate)
        ok = passed(result)
        out.steps.append((rate, ok, result))
        return ok

    lo: float | None = None
    hi: float | None = None
    rate = min(start, max_rate)
    while True:
        if not await attempt(rate):
            hi = rate
            break
        lo = rate
        if rate >= max_rate:
            out.capped = True
            break
        rate = min(rate * 2, max_rate)
    if lo is None:  # the start rate failed: look below it
        rate = start
        for _ in range(DOWN_STEPS):
            rate = round(rate / 2, 3)
            if await attempt(rate):
                lo = rate
                break
            hi = rate
    for _ in range(bisect_steps):
        if lo is None or hi is None or (hi - lo) <= resolution * lo:
            break
        mid = round((lo + hi) / 2, 3)
        if await attempt(mid):
            lo = mid
        else:
            hi = mid
    out.knee, out.first_fail = lo, hi
    return out

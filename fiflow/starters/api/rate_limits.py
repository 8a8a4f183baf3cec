"""Per-API-key rate limits: one token bucket per key, sized by the key's role.

The limits are per API process: behind a load balancer N processes admit up to N times the
configured rate in total (set the per-process figures with that in mind). A shared limit
would need a shared store on every request, which the API otherwise does not have.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from fastapi import Request
from fastapi.responses import JSONResponse

from fiflow.integrations.settings import ROLES, Settings
from fiflow.starters.api.errors import error_response


@dataclass(frozen=True)
class RateLimit:
    """Requests per second, and how many may come at once after a quiet spell."""

    per_second: float
    burst: int


class RateLimited(Exception):
    """A key spent its bucket; `retry_after` is how long until the next request fits."""

    def __init__(self, retry_after: float):
        super().__init__("rate limited")
        self.retry_after = retry_after


class TokenBucket:
    """Holds up to `burst` tokens, refilled continuously at `per_second`."""

    def __init__(self, limit: RateLimit, now: float):
        self.limit = limit
        self.tokens = float(limit.burst)
        self.updated = now

    def take(self, now: float) -> float:
        """Spend one token: 0.0 when there was one, else the seconds until there will be."""
        elapsed = max(now - self.updated, 0.0)  # a clock that steps back refills nothing
        self.tokens = min(self.tokens + elapsed * self.limit.per_second, self.limit.burst)
        self.updated = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / self.limit.per_second


def limits_from_settings(settings: Settings) -> dict[str, RateLimit]:
    """Each role's limit, from the `api_rate_<role>_per_second` / `_burst` settings."""
    return {
        role: RateLimit(
            per_second=getattr(settings, f"api_rate_{role}_per_second"),
            burst=getattr(settings, f"api_rate_{role}_burst"),
        )
        for role in ROLES
    }


class RateLimiter:
    """The buckets of one API process, keyed by a digest of the API key (never the key)."""

    def __init__(self, limits: dict[str, RateLimit], clock: Callable[[], float] = time.monotonic):
        self._limits = limits
        self._clock = clock
        # Only keys that authenticated get a bucket, so there are as many as configured keys.
        self._buckets: dict[str, TokenBucket] = {}

    def check(self, api_key: str, role: str) -> None:
        """Admit one request for a known key, or raise RateLimited."""
        now = self._clock()
        bucket_id = hashlib.sha256(api_key.encode()).hexdigest()
        bucket = self._buckets.get(bucket_id)
        if bucket is None:
            bucket = self._buckets[bucket_id] = TokenBucket(self._limits[role], now)
        wait = bucket.take(now)
        if wait > 0:
            raise RateLimited(wait)


def retry_after_seconds(wait: float) -> int:
    """The `Retry-After` value: whole seconds, rounded up, at least 1."""
    return max(1, math.ceil(wait))


async def rate_limited_response(_: Request, exc: Exception) -> JSONResponse:
    """429 in the API's error shape, with `Retry-After`."""
    assert isinstance(exc, RateLimited)
    seconds = retry_after_seconds(exc.retry_after)
    response = error_response(
        429, "rate_limited", f"too many requests for this API key; retry after {seconds} s"
    )
    response.headers["Retry-After"] = str(seconds)
    return response

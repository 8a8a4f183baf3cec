"""Per-API-key rate limits: the token bucket on an injected clock, and a 429 through the app."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from fiflow.integrations.database import upgrade_database
from fiflow.integrations.settings import ROLES, Settings
from fiflow.starters.api.app import create_app
from fiflow.starters.api.rate_limits import (
    RateLimit,
    RateLimited,
    RateLimiter,
    TokenBucket,
    limits_from_settings,
    retry_after_seconds,
)


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_bucket_admits_its_burst_then_refills_at_its_rate() -> None:
    bucket = TokenBucket(RateLimit(per_second=2.0, burst=3), now=0.0)
    assert [bucket.take(0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.take(0.0) == pytest.approx(0.5)  # one token every half second
    assert bucket.take(0.25) == pytest.approx(0.25)
    assert bucket.take(0.5) == 0.0
    # A long pause refills to the burst, never beyond.
    assert [bucket.take(100.0) for _ in range(4)][-1] == pytest.approx(0.5)


def test_a_clock_stepping_back_refills_nothing() -> None:
    bucket = TokenBucket(RateLimit(per_second=1.0, burst=1), now=10.0)
    assert bucket.take(10.0) == 0.0
    assert bucket.take(5.0) > 0


def test_each_key_has_its_own_bucket_sized_by_its_role() -> None:
    clock = Clock()
    limiter = RateLimiter({"system": RateLimit(10.0, 2), "admin": RateLimit(0.5, 1)}, clock=clock)
    for _ in range(2):
        limiter.check("key-a", "system")
    with pytest.raises(RateLimited) as refused:
        limiter.check("key-a", "system")
    assert refused.value.retry_after == pytest.approx(0.1)
    limiter.check("key-b", "system")  # another key of the same role is unaffected
    limiter.check("key-c", "admin")
    with pytest.raises(RateLimited) as refused:
        limiter.check("key-c", "admin")
    assert refused.value.retry_after == pytest.approx(2.0)
    clock.now += 0.1
    limiter.check("key-a", "system")


def test_buckets_never_hold_the_key_itself() -> None:
    limiter = RateLimiter(limits_from_settings(Settings()), clock=Clock())
    limiter.check("secret-key-value", "system")
    assert "secret-key-value" not in repr(vars(limiter))


def test_retry_after_is_whole_seconds_at_least_one() -> None:
    assert [retry_after_seconds(w) for w in (0.001, 0.5, 1.0, 1.2, 59.01)] == [1, 1, 1, 2, 60]


def test_every_role_has_a_limit_high_enough_for_normal_use() -> None:
    limits = limits_from_settings(Settings())
    assert set(limits) == set(ROLES)
    assert limits["system"] == RateLimit(per_second=200.0, burst=400)
    assert all(lim.per_second >= 10 and lim.burst >= 30 for lim in limits.values())


async def test_a_key_over_its_limit_gets_429_with_retry_after_and_others_do_not(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db_url = f"sqlite:///{tmp_path / 'fiflow.db'}"
    upgrade_database(db_url)
    # The environment way, as an operator would set it.
    monkeypatch.setenv("FIFLOW_API_RATE_ADMIN_PER_SECOND", "0.1")
    monkeypatch.setenv("FIFLOW_API_RATE_ADMIN_BURST", "2")
    settings = Settings(database_url=db_url, api_keys="admin=admin-one,admin=admin-two")
    app = create_app(settings)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as http:

        async def rules(key: str) -> httpx.Response:
            return await http.get("/v1/admin/rules", headers={"X-API-Key": key})

        assert [(await rules("admin-one")).status_code for _ in range(2)] == [200, 200]
        refused = await rules("admin-one")
        assert refused.status_code == 429
        body = refused.json()
        assert body["code"] == "rate_limited" and body["message"]
        assert 1 <= int(refused.headers["Retry-After"]) <= 10  # a token every 10 s
        assert "admin-one" not in refused.text

        assert (await rules("admin-two")).status_code == 200
        # An unknown key is told it is unknown, not limited (it never gets a bucket).
        assert (await rules("nobody")).status_code == 401

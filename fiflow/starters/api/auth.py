"""API keys and roles: `X-API-Key` maps to one role; each endpoint names the roles it admits."""

from __future__ import annotations

import hmac
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader

from fiflow.starters.api.errors import ApiError
from fiflow.starters.api.rate_limits import RateLimiter

api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False)


def role_of(key: str | None, keys: dict[str, str]) -> str | None:
    """The role of a key, compared in constant time."""
    if not key:
        return None
    found = None
    for known, role in keys.items():
        if hmac.compare_digest(known.encode(), key.encode()):
            found = role
    return found


def require(*roles: str) -> Any:
    """Dependency: 401 without a known key, 429 over its rate, 403 when its role is not admitted."""

    async def check(request: Request, key: str | None = Depends(api_key_header)) -> str:
        role = role_of(key, request.app.state.api_keys)
        if role is None or key is None:
            raise ApiError(401, "unauthorized", "a valid X-API-Key header is required")
        # Counted before the role check, so a key hammering endpoints it may not use is
        # limited too; once per request, however many dependencies check the key.
        if not getattr(request.state, "rate_counted", False):
            request.state.rate_counted = True
            limiter: RateLimiter = request.app.state.rate_limiter
            limiter.check(key, role)
        if role not in roles:
            raise ApiError(403, "forbidden", f"this endpoint needs the {' or '.join(roles)} role")
        return role

    dependency: Callable[..., Coroutine[Any, Any, str]] = check
    return Depends(dependency)

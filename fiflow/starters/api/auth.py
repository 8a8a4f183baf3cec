"""Who calls: API keys (a role), staff keys and OIDC tokens (a person with a role), and the
customer session that scopes a channel key; each endpoint names the roles it admits."""

from __future__ import annotations

import hmac
import re
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from fiflow.integrations.oidc import InvalidToken, claim_at, claim_values
from fiflow.integrations.settings import PERSON_ID
from fiflow.starters.api.errors import ApiError
from fiflow.starters.api.rate_limits import RateLimiter
from fiflow.starters.api.sessions import InvalidSession, session_customer

api_key_header = APIKeyHeader(
    name="X-API-Key",
    auto_error=False,
    scheme_name="ApiKey",
    description="A role key from FIFLOW_API_KEYS (system, channel, reviewer, admin) or a "
    "staff person's key from FIFLOW_STAFF_KEYS.",
)
bearer_header = HTTPBearer(
    auto_error=False,
    scheme_name="StaffBearer",
    description="A staff person's OIDC access token (when FIFLOW_API_OIDC_ISSUER is set).",
)
session_header = APIKeyHeader(
    name="X-Customer-Session",
    auto_error=False,
    scheme_name="CustomerSession",
    description="With a channel key: the signed-in customer's session (an HS256 JWT); "
    "a channel reads and changes only that customer's objects.",
)


@dataclass(frozen=True)
class Identity:
    """The caller: its roles, the staff person behind it, the customer a channel acts for."""

    roles: frozenset[str]
    person: str | None = None  # None: a shared role key, which no person answers for
    customer_id: str | None = None  # channel only: from a verified X-Customer-Session


def staff_of(key: str, staff: dict[str, tuple[str, str]]) -> tuple[str, str] | None:
    """The (person, role) of a staff key, compared in constant time."""
    found = None
    for known, who in staff.items():
        if hmac.compare_digest(known.encode(), key.encode()):
            found = who
    return found


def role_of(key: str | None, keys: dict[str, str]) -> str | None:
    """The role of a key, compared in constant time."""
    if not key:
        return None
    found = None
    for known, role in keys.items():
        if hmac.compare_digest(known.encode(), key.encode()):
            found = role
    return found


async def identify(
    request: Request,
    key: str | None = Depends(api_key_header),
    bearer: HTTPAuthorizationCredentials | None = Depends(bearer_header),
    session: str | None = Depends(session_header),
) -> Identity:
    """Dependency: the caller, or 401; rate-limited once per request, before any role check."""
    cached: Identity | None = getattr(request.state, "identity", None)
    if cached is not None:
        return cached
    state = request.app.state.fiflow
    limiter: RateLimiter = request.app.state.rate_limiter
    if key:
        role = role_of(key, request.app.state.api_keys)
        staff = staff_of(key, state.staff_keys)
        if staff is not None:
            identity = Identity(frozenset({staff[1]}), person=staff[0])
            role = staff[1]
        elif role is not None:
            identity = Identity(frozenset({role}))
        else:
            raise ApiError(401, "unauthorized", "a valid X-API-Key header is required")
        # Counted before the role check, so a key hammering endpoints it may not use is
        # limited too.
        limiter.check(key, role)
    elif bearer is not None and state.oidc is not None:
        identity = await _oidc_identity(state, bearer.credentials)
        limiter.check(
            f"oidc:{identity.person}", "admin" if "admin" in identity.roles else "reviewer"
        )
    else:
        raise ApiError(
            401, "unauthorized", "a valid X-API-Key header (or staff bearer token) is required"
        )
    if session and "channel" in identity.roles:
        try:
            customer_id = session_customer(
                state.settings.customer_session_key.get_secret_value(), session
            )
        except InvalidSession as exc:
            raise ApiError(403, "invalid_customer_session", str(exc)) from None
        identity = Identity(identity.roles, identity.person, customer_id)
    request.state.identity = identity
    return identity


async def _oidc_identity(state: Any, token: str) -> Identity:
    settings = state.settings
    try:
        claims = await state.oidc.verify(token)
    except InvalidToken as exc:
        raise ApiError(401, "unauthorized", str(exc)) from None
    held = claim_values(claims, settings.api_oidc_roles_claim)
    roles = {
        role
        for role, name in (
            ("reviewer", settings.api_oidc_reviewer_role),
            ("admin", settings.api_oidc_admin_role),
        )
        if name in held
    }
    if not roles:
        raise ApiError(403, "forbidden", "the token carries no fiflow staff role")
    person = claim_at(claims, settings.api_oidc_person_claim)
    if not isinstance(person, str) or not re.match(PERSON_ID, person):
        raise ApiError(
            403,
            "unusable_identity",
            f"the token's {settings.api_oidc_person_claim} claim is not a usable staff ID "
            "(letters, digits, . _ -; at most 48)",
        )
    return Identity(frozenset(roles), person=person)


def require(*roles: str, person: bool = False) -> Any:
    """Dependency: the caller's Identity; 403 unless it holds one of `roles` (and, with
    `person`, unless a person answers for it: shared role keys may not)."""

    async def check(identity: Identity = Depends(identify)) -> Identity:
        if not identity.roles & set(roles):
            raise ApiError(403, "forbidden", f"this endpoint needs the {' or '.join(roles)} role")
        if person and identity.person is None:
            raise ApiError(
                403,
                "person_required",
                "this needs a staff identity (a staff key or bearer token), not a shared key",
            )
        return identity

    dependency: Callable[..., Coroutine[Any, Any, Identity]] = check
    return Depends(dependency)


def customer_scope(identity: Identity) -> str | None:
    """The one customer a channel caller may see (403 without a session); None: staff and
    systems see every customer's objects."""
    if "channel" not in identity.roles:
        return None
    if identity.customer_id is None:
        raise ApiError(
            403,
            "customer_session_required",
            "a channel key reads a customer's objects only with X-Customer-Session",
        )
    return identity.customer_id


def ensure_owner(scope: str | None, owner: str | None, not_found: ApiError) -> None:
    """Hide another customer's object behind the same 404 as a missing one."""
    if scope is not None and owner != scope:
        raise not_found

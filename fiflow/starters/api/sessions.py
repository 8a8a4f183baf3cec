"""Customer sessions: which customer a channel app's request acts for.

The FI's login (not fiflow) mints them when the customer signs in to the app: a JWT signed
with HS256 under `FIFLOW_CUSTOMER_SESSION_KEY`, `sub` = the CRM customer ID, `aud` =
`fiflow-customer-session`, an `exp` at most MAX_LIFETIME ahead. The channel app's backend
sends it as `X-Customer-Session` beside its channel key. A symmetric key is right here (unlike
OIDC, whose tokens are checked against published public keys): the key is a secret shared by
the FI's login and fiflow only, and the algorithm is pinned.
"""

from __future__ import annotations

import re
import time
from datetime import timedelta

import jwt

from fiflow.domain.alerts import SAFE_ID

AUDIENCE = "fiflow-customer-session"
ALGORITHM = "HS256"
# A session is a sign-in, not a standing credential: longer-lived tokens are refused.
MAX_LIFETIME = timedelta(hours=12)


class InvalidSession(Exception):
    """A session that does not verify; the message names no claim value."""


def mint_customer_session(
    key: str, customer_id: str, ttl: timedelta = timedelta(minutes=15), now: float | None = None
) -> str:
    """A session token for one customer (what the FI's login issues; used by tests and the CLI)."""
    issued = int(now if now is not None else time.time())
    claims = {
        "sub": customer_id,
        "aud": AUDIENCE,
        "iat": issued,
        "exp": issued + int(ttl.total_seconds()),
    }
    return jwt.encode(claims, key, algorithm=ALGORITHM)


def session_customer(key: str, token: str) -> str:
    """The customer a session token is for; InvalidSession when it does not verify."""
    try:
        claims = jwt.decode(
            token,
            key,
            algorithms=[ALGORITHM],
            audience=AUDIENCE,
            options={"require": ["exp", "sub", "aud"]},
        )
    except jwt.InvalidTokenError as exc:
        raise InvalidSession(f"the customer session is not valid: {type(exc).__name__}") from None
    if claims["exp"] - time.time() > MAX_LIFETIME.total_seconds():
        raise InvalidSession("the customer session lives longer than a session may")
    customer_id = claims["sub"]
    if not isinstance(customer_id, str) or not re.match(SAFE_ID, customer_id):
        raise InvalidSession("the customer session does not name a customer")
    return customer_id

"""The console's sign-in: a signed session cookie for a staff person, and CSRF tokens.

A browser cannot send `X-API-Key`, so the console trades a staff credential (a staff key, a
shared staff role key, or an OIDC bearer token) for a session cookie once. The cookie holds
no credential: the roles, the person, an expiry, a random session ID and, for a key, the
SHA-256 of the key, so a key removed from the configuration ends its sessions at once. It is
HMAC-SHA256 signed with FIFLOW_CONSOLE_SESSION_KEY, HttpOnly, SameSite=Strict, Secure over
HTTPS and scoped to /console. Every POST form carries a CSRF token bound to the session ID.

Sign-in has a throttle of its own (the API's per-key buckets only see keys that exist):
after LOGIN_FAILURES refused attempts within LOGIN_WINDOW_S from one client address, or with
one presented credential, further attempts get 429 until the oldest failure ages out.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass

COOKIE = "fiflow_console"
LOGIN_COOKIE = "fiflow_console_login"  # the login form's own CSRF nonce (double submit)
PATH = "/console"
LOGIN_FAILURES = 5
LOGIN_WINDOW_S = 60.0
# Each subject costs a few hundred bytes; past this many the stalest are forgotten, so a flood
# of made-up keys cannot grow the process without bound.
LOGIN_MAX_TRACKED = 10_000


class BadSession(Exception):
    """A cookie that does not verify, or has expired."""


@dataclass(frozen=True)
class ConsoleSession:
    """Who is signed in."""

    roles: frozenset[str]
    person: str | None
    expires: int
    sid: str
    key_sha256: str | None  # None for an OIDC sign-in


def key_digest(key: str) -> str:
    """The SHA-256 of a credential, as the cookie names it."""
    return hashlib.sha256(key.encode()).hexdigest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(secret: str, purpose: str, data: str) -> str:
    return _b64(hmac.new(secret.encode(), f"{purpose}:{data}".encode(), hashlib.sha256).digest())


def issue(
    secret: str,
    *,
    roles: frozenset[str],
    person: str | None,
    ttl_s: float,
    key_sha256: str | None,
    now: float | None = None,
) -> tuple[str, ConsoleSession]:
    """A new session and its cookie value."""
    session = ConsoleSession(
        roles=roles,
        person=person,
        expires=int((now if now is not None else time.time()) + ttl_s),
        sid=secrets.token_urlsafe(16),
        key_sha256=key_sha256,
    )
    body = _b64(
        json.dumps(
            {
                "r": sorted(roles),
                "p": person,
                "e": session.expires,
                "s": session.sid,
                "k": key_sha256,
            },
            separators=(",", ":"),
        ).encode()
    )
    return f"{body}.{_mac(secret, 'session', body)}", session


def verify(secret: str, cookie: str, now: float | None = None) -> ConsoleSession:
    """The session a cookie carries; BadSession unless signed by us and unexpired."""
    body, _, mac = cookie.partition(".")
    if not body or not hmac.compare_digest(mac.encode(), _mac(secret, "session", body).encode()):
        raise BadSession("the console session does not verify")
    try:
        data = json.loads(_unb64(body))
        session = ConsoleSession(
            roles=frozenset(str(r) for r in data["r"]),
            person=data["p"],
            expires=int(data["e"]),
            sid=str(data["s"]),
            key_sha256=data["k"],
        )
    except (binascii.Error, ValueError, KeyError, TypeError):
        raise BadSession("the console session is malformed") from None
    if session.expires <= (now if now is not None else time.time()):
        raise BadSession("the console session has expired")
    return session


def csrf_token(secret: str, sid: str) -> str:
    """The CSRF token of every form of one session."""
    return _mac(secret, "csrf", sid)


def csrf_ok(secret: str, sid: str, token: str | None) -> bool:
    """Whether a submitted form carries this session's CSRF token."""
    return token is not None and hmac.compare_digest(
        token.encode(), csrf_token(secret, sid).encode()
    )


def new_nonce() -> str:
    """A random value for the login form's double-submit token."""
    return secrets.token_urlsafe(16)


class LoginThrottle:
    """Refused console sign-ins per subject (a client address, a presented credential).

    Subjects are kept as SHA-256 digests, so the process never holds a presented key. Like
    the API's rate limits it is per API process: N processes admit N times the failures.
    """

    def __init__(
        self,
        failures: int = LOGIN_FAILURES,
        window_s: float = LOGIN_WINDOW_S,
        *,
        max_tracked: int = LOGIN_MAX_TRACKED,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.failures = failures
        self.window_s = window_s
        self.max_tracked = max_tracked
        self._clock = clock
        self._seen: OrderedDict[str, deque[float]] = OrderedDict()

    def _recent(self, digest: str, now: float) -> deque[float]:
        times = self._seen.get(digest) or deque()
        while times and times[0] <= now - self.window_s:
            times.popleft()
        return times

    def wait(self, *subjects: str) -> float:
        """Seconds until any of `subjects` may try again; 0.0 when all may now."""
        now = self._clock()
        wait = 0.0
        for digest in map(key_digest, subjects):
            times = self._recent(digest, now)
            if len(times) >= self.failures:
                wait = max(wait, times[-self.failures] + self.window_s - now)
        return wait

    def failed(self, *subjects: str) -> None:
        """Count one refused sign-in against each of `subjects`."""
        now = self._clock()
        for digest in map(key_digest, subjects):
            times = self._recent(digest, now)
            times.append(now)
            self._seen[digest] = times
            self._seen.move_to_end(digest)
        while len(self._seen) > self.max_tracked:
            self._seen.popitem(last=False)

    def forget(self, subject: str) -> None:
        """A successful sign-in clears its credential's failures."""
        self._seen.pop(key_digest(subject), None)

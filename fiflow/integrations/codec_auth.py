"""Who may use the codec server: a shared token, or an OIDC bearer token with the reader role."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from enum import StrEnum

from fiflow.integrations.oidc import ALGORITHMS, InvalidToken, OidcVerifier, claim_values
from fiflow.integrations.settings import Settings

__all__ = ["ALGORITHMS", "CodecAuth", "Decision", "Verdict"]


class Verdict(StrEnum):
    """The outcome of checking a caller."""

    ALLOWED = "allowed"
    UNAUTHENTICATED = "unauthenticated"  # no credential, or one that does not verify
    FORBIDDEN = "forbidden"  # a valid identity without the reader role


@dataclass(frozen=True)
class Decision:
    """A verdict and a message safe to return (never the token or a claim value)."""

    verdict: Verdict
    message: str


class CodecAuth:
    """Checks the credential on each codec request."""

    def __init__(self, settings: Settings):
        self._token = settings.codec_token.get_secret_value() if settings.codec_token else None
        self._roles_claim = settings.codec_oidc_roles_claim
        self._reader_role = settings.codec_reader_role
        self._oidc: OidcVerifier | None = None
        if settings.codec_oidc_issuer:
            self._oidc = OidcVerifier(
                settings.codec_oidc_issuer,
                settings.codec_oidc_audience,
                settings.codec_oidc_jwks_url,
            )

    @property
    def configured(self) -> bool:
        """Whether any way to authenticate exists (the server refuses to start otherwise)."""
        return self._token is not None or self._oidc is not None

    async def check(self, presented: str | None) -> Decision:
        """Allowed for the shared token, or a verified OIDC token carrying the reader role."""
        if not presented:
            return Decision(Verdict.UNAUTHENTICATED, "a bearer token is required")
        if self._token is not None and hmac.compare_digest(
            presented.encode(), self._token.encode()
        ):
            return Decision(Verdict.ALLOWED, "shared token")
        if self._oidc is None:
            return Decision(Verdict.UNAUTHENTICATED, "the token is not valid")
        try:
            claims = await self._oidc.verify(presented)
        except InvalidToken as exc:
            return Decision(Verdict.UNAUTHENTICATED, str(exc))
        if self._reader_role not in claim_values(claims, self._roles_claim):
            return Decision(Verdict.FORBIDDEN, f"decoding needs the {self._reader_role} role")
        return Decision(Verdict.ALLOWED, "oidc")

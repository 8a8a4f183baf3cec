"""The credit bureau's state: effective pulls and the inquiries hard pulls leave."""

from __future__ import annotations

from collections import Counter
from typing import Any, Literal

from fiflow.sandbox.credit_profiles import CreditProfile
from fiflow.sandbox.ids import new_id
from fiflow.sandbox.timeutil import iso_now

PullKind = Literal["soft", "hard"]


class Bureau:
    """Pulls in the order they took effect; replays and failures never reach here."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """No pulls, no inquiries beyond the seeded ones."""
        self._pulls: list[dict[str, Any]] = []
        self._hard_pulls: Counter[str] = Counter()

    def pull(
        self, profile: CreditProfile, kind: PullKind, reference: str, idempotency_key: str | None
    ) -> dict[str, Any]:
        """Report on a customer; a hard pull adds an inquiry that later reports show."""
        pull_id, pulled_at = new_id("pull"), iso_now()
        # The report describes the file as it stood when pulled, so before this inquiry.
        inquiries = profile.base_inquiries + self._hard_pulls[profile.customer_id]
        if kind == "hard":
            self._hard_pulls[profile.customer_id] += 1
        self._pulls.append(
            {
                "pull_id": pull_id,
                "customer_id": profile.customer_id,
                "kind": kind,
                "reference": reference,
                "idempotency_key": idempotency_key,
                "pulled_at": pulled_at,
            }
        )
        return {
            "pull_id": pull_id,
            "customer_id": profile.customer_id,
            "kind": kind,
            "reference": reference,
            "score": profile.score,
            "monthly_debt_payments": profile.monthly_debt_payments,
            "open_tradelines": profile.open_tradelines,
            "delinquencies_24m": profile.delinquencies_24m,
            "recent_inquiries": inquiries,
            "pulled_at": pulled_at,
        }

    def pulls(
        self, customer_id: str | None = None, kind: PullKind | None = None
    ) -> list[dict[str, Any]]:
        """Effective pulls in order, optionally for one customer and/or kind."""
        return [
            dict(p)
            for p in self._pulls
            if (customer_id is None or p["customer_id"] == customer_id)
            and (kind is None or p["kind"] == kind)
        ]

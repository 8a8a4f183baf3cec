"""Business keys: workflow IDs and hashes that carry no PII."""

from __future__ import annotations

import hashlib
import hmac

from fiflow.domain.phones import normalise_phone


def keyed_hash(key: str, value: str, *, length: int = 32) -> str:
    """HMAC-SHA256 of a value (hex, truncated): stable, and not reversible without the key."""
    return hmac.new(key.encode(), value.encode(), hashlib.sha256).hexdigest()[:length]


def address_hash(key: str, address: str) -> str:
    """The keyed hash that stands for a channel address (a phone number) everywhere.

    The number is normalised to E.164 first, so every way of writing it hashes alike;
    InvalidPhoneNumber for a number that is not valid (entry points refuse those earlier).
    """
    return keyed_hash(key, "address:" + normalise_phone(address))


def alert_id_for(key: str, source_event_id: str) -> str:
    """The alert ID for an alerting-system event: the same event always maps to the same alert."""
    return "al-" + keyed_hash(key, "alert:" + source_event_id, length=24)


def alert_workflow_id(alert_id: str) -> str:
    """Workflow ID of the alert's FraudAlertWorkflow."""
    return f"alert-{alert_id}"


def notice_id_for(key: str, source_event_id: str) -> str:
    """The informational alert ID for a screened transaction (or a batch digest's key)."""
    return "nt-" + keyed_hash(key, "notice:" + source_event_id, length=24)


def notice_workflow_id(notice_id: str) -> str:
    """Workflow ID of an InformationalAlertWorkflow."""
    return f"notice-{notice_id}"


def conversation_workflow_id(channel: str, address_digest: str) -> str:
    """Workflow ID of the conversation for one channel address."""
    return f"conv-{channel}-{address_digest}"


def idempotency_key(workflow_id: str, step: str) -> str:
    """Idempotency key for a back-office write: business workflow ID plus step, never run ID."""
    return f"{workflow_id}:{step}"


def reply_code_candidates(alert_id: str) -> list[str]:
    """Four-digit reply codes for an alert, in order of preference (deterministic)."""
    codes: list[str] = []
    for salt in range(64):
        digest = hashlib.sha256(f"{alert_id}:{salt}".encode()).digest()
        code = str(1000 + int.from_bytes(digest[:4], "big") % 9000)
        if code not in codes:
            codes.append(code)
    return codes


def pick_reply_code(alert_id: str, in_use: set[str]) -> str:
    """The first candidate code that none of the customer's open alerts uses."""
    candidates = reply_code_candidates(alert_id)
    return next((c for c in candidates if c not in in_use), candidates[0])


def credit_workflow_id(application_id: str) -> str:
    """Workflow ID of a credit application's CreditApplicationWorkflow."""
    return f"credit-{application_id}"


def interaction_workflow_id(interaction_id: str) -> str:
    """Workflow ID of an interaction's InteractionWorkflow."""
    return f"interaction-{interaction_id}"


def follow_up_workflow_id(follow_up_id: str) -> str:
    """Workflow ID of a FollowUpWorkflow."""
    return f"followup-{follow_up_id}"


def prefill_workflow_id(prefill_id: str) -> str:
    """Workflow ID of a CreditPrefillWorkflow."""
    return f"prefill-{prefill_id}"

"""Informational alerts (notices): one message, no reply expected — models and pure rules.

A notice tells a customer about one transaction, or, as a digest, about several of theirs
at once (one message instead of a burst), or about one balance below their alert amount (a
settlement file's record). Its texts come from the alert rules' `notices`
section; everything here is pure, so the workflow can build the message itself.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from enum import StrEnum

from pydantic import BaseModel, Field
from temporalio.common import SearchAttributePair, TypedSearchAttributes

from fiflow.domain import search_attributes as sa
from fiflow.domain.alerts import CURRENCY_SYMBOLS, ActionRecord
from fiflow.domain.contact_window import next_quiet_end
from fiflow.domain.customers import Channel, Customer, channel_order, other_channel
from fiflow.domain.feeds.matches import NoticeItem, NoticeItemKind, NoticeRequest
from fiflow.domain.rules import REASON_LABEL_MAX, NoticeRules, QuietHours, render, render_sms
from fiflow.domain.text import MERCHANT_MAX, clean_text, fit_sms, shorten, sms_segments
from fiflow.domain.triggers import Hours, zone_or_utc

# A digest shortens merchant names down to this before it lists fewer transactions.
DIGEST_MERCHANT_MIN = 12
_CENTS = Decimal("0.01")


class NoticeStatus(StrEnum):
    """Where a notice is; also its AlertState search attribute."""

    STARTING = "starting"
    WAITING_QUIET_HOURS = "waiting_quiet_hours"
    SENT = "sent"
    # Every channel it could take refused: the number sent STOP (and there was no push).
    SKIPPED_OPTED_OUT = "skipped_opted_out"
    # No address to reach the customer on (or no profile to find one in).
    NO_CHANNEL = "no_channel"
    # Each channel tried failed for good (after its retries).
    FAILED = "failed"


class NoticeInput(BaseModel):
    """The single argument of InformationalAlertWorkflow."""

    notice_id: str
    request: NoticeRequest
    received_at: datetime
    fi_name: str = "Fiflow Bank"


class NoticeResult(BaseModel):
    """The notice as it stands (the `status` query) and, once ended, what it did."""

    notice_id: str
    alert_type: str
    customer_id: str
    status: NoticeStatus = NoticeStatus.STARTING
    channel: Channel | None = None
    # The provider's ID of the message that went out (SMS SID or push ID).
    message_id: str | None = None
    idempotency_key: str | None = None
    # The alert types the notice tells about, in order of first appearance.
    reasons: list[str] = Field(default_factory=list)
    items: int = 1
    rule_set_version: str | None = None
    # Each channel tried: done, skipped (and why) or failed.
    attempts: list[ActionRecord] = Field(default_factory=list)
    path: list[str] = Field(default_factory=list)
    # received, send_after (quiet hours), sent, completed.
    timings: dict[str, datetime] = Field(default_factory=dict)


def notice_reasons(req: NoticeRequest) -> list[str]:
    """Every alert type the notice's items name, once each, in order."""
    return list(dict.fromkeys(r for item in req.items for r in item.reasons))


# --- what ops see (no personal data) -----------------------------------------------------


def notice_search_attributes(inp: NoticeInput) -> TypedSearchAttributes:
    """The notice's search attributes at start (IDs and types only)."""
    return TypedSearchAttributes(
        [
            SearchAttributePair(sa.ALERT_ID, inp.notice_id),
            SearchAttributePair(sa.ALERT_TYPE, inp.request.alert_type),
            SearchAttributePair(sa.ALERT_STATE, NoticeStatus.STARTING.value),
        ]
    )


def notice_summary(inp: NoticeInput) -> str:
    """The Web UI's one-line summary."""
    req = inp.request
    kind = f"digest of {len(req.items)}" if len(req.items) > 1 else req.alert_type
    return f"Notice {inp.notice_id} ({kind})"


def notice_details(inp: NoticeInput) -> str:
    """The Web UI's static details."""
    req = inp.request
    channel = req.channel.value if req.channel else "customer's preference"
    return (
        f"alert type `{req.alert_type}` · customer `{req.customer_id}` · "
        f"{len(req.items)} transaction(s) · reasons {', '.join(notice_reasons(req))} · "
        f"channel {channel} · from {req.origin.value}"
        + (" · may arrive in quiet hours" if req.quiet_hours_ok else "")
    )


# --- channel and time --------------------------------------------------------------------


def notice_channels(customer: Customer, requested: Channel | None) -> list[Channel]:
    """Channels to try, best first: the one asked for (else the customer's), then the other."""
    if requested is None:
        return channel_order(customer)
    return [c for c in (requested, other_channel(requested)) if customer.reachable_by(c)]


def quiet_hours_end(now: datetime, quiet: QuietHours | None, customer_zone: str | None) -> datetime:
    """When a notice due `now` may go out: now, or when the customer's quiet hours end.

    Evaluated on the customer's local clock with zoneinfo (unknown zones count as UTC), so
    "until 08:00" means 08:00 local on either side of a daylight-saving change.
    """
    if quiet is None:
        return now
    hours = Hours(start=quiet.start, end=quiet.end)
    tz = zone_or_utc(customer_zone)
    if not hours.contains(now.astimezone(tz)):
        return now
    return next_quiet_end(now, hours, tz)


# --- the message -------------------------------------------------------------------------


def display_amount(amount: str, currency: str) -> str:
    """An exact decimal amount as a customer reads it ("$2,150.00", "-$12.50", "99.00 CHF")."""
    code = clean_text(currency, 8)
    try:
        value = Decimal(amount).quantize(_CENTS, rounding=ROUND_HALF_UP)
    except (InvalidOperation, ValueError):
        return clean_text(f"{amount} {code}", 24)
    sign = "-" if value < 0 else ""
    text = f"{abs(value):,.2f}"
    symbol = CURRENCY_SYMBOLS.get(code)
    return f"{sign}{symbol}{text}" if symbol else f"{sign}{text} {code}"


def reason_labels(reasons: list[str], labels: dict[str, str]) -> str:
    """The reasons as the customer reads them, from the rules' labels."""
    named = [clean_text(labels.get(r) or r.replace("_", " "), REASON_LABEL_MAX) for r in reasons]
    return ", ".join(dict.fromkeys(named))


def _item_values(item: NoticeItem, labels: dict[str, str]) -> dict[str, str]:
    if item.kind is NoticeItemKind.BALANCE:
        # In a digest a balance reads "$84.12 at account ending 0123 (balance below ...)".
        last4 = clean_text(item.account_last4 or "", 4)
        return {
            "amount": display_amount(item.amount, item.currency),
            "merchant": f"account ending {last4}",
            "card_last4": last4,
            "reasons": reason_labels(item.reasons, labels),
        }
    return {
        "amount": display_amount(item.amount, item.currency),
        "merchant": clean_text(item.merchant, MERCHANT_MAX),
        "card_last4": clean_text(item.card_last4, 4),
        "reasons": reason_labels(item.reasons, labels),
    }


def notice_text(rules: NoticeRules, req: NoticeRequest) -> str:
    """The notice's message: cleaned, and within the rules' SMS segments.

    One transaction reads as `notice_sms`. Several read as one `digest_sms` listing up to
    `digest_max_items` of them then "+N more"; when that is too long, merchant names are
    shortened (down to DIGEST_MERCHANT_MIN) before fewer transactions are listed.
    """
    policy, templates = rules.policy, rules.policy.templates
    if len(req.items) == 1 and req.items[0].kind is NoticeItemKind.BALANCE:
        return balance_text(rules, req.items[0])
    items = [_item_values(item, policy.reasons) for item in req.items]
    if len(items) == 1:
        return render_sms(
            templates["notice_sms"],
            {"fi_name": rules.fi_name, **items[0]},
            outside=("merchant",),
            max_segments=rules.sms_max_segments,
        )

    def digest(shown: int) -> Callable[[list[str]], str]:
        def build(merchants: list[str]) -> str:
            lines = [
                render(templates["digest_item"], {**values, "merchant": merchant})
                for values, merchant in zip(items[:shown], merchants, strict=True)
            ]
            listed = "; ".join(lines)
            if len(items) > shown:
                listed += " " + render(templates["digest_more"], {"more": str(len(items) - shown)})
            return render(
                templates["digest_sms"],
                {"fi_name": rules.fi_name, "count": str(len(items)), "items": listed},
            )

        return build

    for shown in range(min(len(items), policy.digest_max_items), 0, -1):
        merchants = [values["merchant"] for values in items[:shown]]
        longest = max(len(m) for m in merchants)
        for cap in range(longest, min(longest, DIGEST_MERCHANT_MIN) - 1, -1):
            text = digest(shown)([shorten(m, cap) for m in merchants])
            if sms_segments(text).segments <= rules.sms_max_segments:
                return text
    # Not even one transaction fits with a short merchant name: the text itself is cut.
    first = digest(1)
    return fit_sms(
        lambda v: first([v["merchant"]]),
        {"merchant": items[0]["merchant"]},
        outside=("merchant",),
        max_segments=rules.sms_max_segments,
    )


def balance_text(rules: NoticeRules, item: NoticeItem) -> str:
    """A balance notice: "the balance of account ending 0123 is $84.12 (below your $100.00
    alert)", from the rules' `balance_sms` (or the shipped text when the rules predate it)."""
    values = {
        "fi_name": rules.fi_name,
        "account_last4": clean_text(item.account_last4 or "", 4),
        "balance": display_amount(item.amount, item.currency),
        "threshold": display_amount(item.threshold or "0", item.currency),
        "as_of": item.occurred_at.date().isoformat(),
        "reasons": reason_labels(item.reasons, rules.policy.reasons),
    }
    return render_sms(
        rules.policy.template("balance_sms"),
        values,
        outside=("reasons",),
        max_segments=rules.sms_max_segments,
    )


def push_title(rules: NoticeRules) -> str:
    """The push notification's title."""
    return render(rules.policy.templates["push_title"], {"fi_name": rules.fi_name})

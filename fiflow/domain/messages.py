"""Texts the conversation sends on its own (alert texts come from the rule file)."""

from __future__ import annotations

from collections.abc import Callable

from fiflow.domain.conversations import OpenAlert
from fiflow.domain.text import SUMMARY_MAX, clean_text, fit_sms


def clarify(fi_name: str, alerts: list[OpenAlert]) -> str:
    """Asks which alert a code-less reply meant."""
    return _listing(
        alerts,
        lambda listed: (
            f"{fi_name}: you have {len(alerts)} open alerts ({listed}). "
            "Reply YES or NO with the code."
        ),
    )


def unknown_code(fi_name: str, code: str, alerts: list[OpenAlert]) -> str:
    """A code that matches none of the open alerts."""
    return _listing(
        alerts,
        lambda listed: (
            f"{fi_name}: code {code} doesn't match an open alert ({listed}). "
            "Reply YES or NO with the code."
        ),
    )


def digest(fi_name: str, alerts: list[OpenAlert]) -> str:
    """One text for the alerts merged over the address's cap, each with its code."""
    return _listing(
        alerts,
        lambda listed: (
            f"{fi_name}: {len(alerts)} more card alert{'s' if len(alerts) != 1 else ''} "
            f"({listed}). Reply YES with the code if it was you, NO with the code if not."
        ),
    )


def _listing(alerts: list[OpenAlert], build: Callable[[str], str]) -> str:
    """A text listing the open alerts, within the SMS segment limit.

    Summaries are transaction text from outside: cleaned again (an alert registered before
    summaries were cleaned may still be open) and shortened first when the text is too long.
    """
    values = {f"s{i}": clean_text(a.summary, SUMMARY_MAX) for i, a in enumerate(alerts)}

    def fill(v: dict[str, str]) -> str:
        return build("; ".join(f"{v[f's{i}']}: code {a.reply_code}" for i, a in enumerate(alerts)))

    return fit_sms(fill, values, outside=values.keys())


def not_understood(fi_name: str, alerts: list[OpenAlert]) -> str:
    """A message that is neither an answer nor a keyword."""
    if len(alerts) == 1:
        code = alerts[0].reply_code
        return f"{fi_name}: sorry, we didn't understand. Reply YES {code} or NO {code}."
    return f"{fi_name}: sorry, we didn't understand. Reply YES or NO with the code from the alert."


def no_open_alert(fi_name: str) -> str:
    """A reply when nothing is waiting for one."""
    return f"{fi_name}: there is no open alert waiting for your reply, so nothing was changed."


def expired(fi_name: str) -> str:
    """A reply that came after the alert closed."""
    return (
        f"{fi_name}: that alert has expired, so your reply was not applied. "
        "If something looks wrong, call us at the number on your card."
    )


def opted_out(fi_name: str) -> str:
    """The one confirmation after STOP."""
    return (
        f"{fi_name}: you are unsubscribed from SMS alerts and will get no more messages. "
        "Reply START to resubscribe."
    )


def opted_in(fi_name: str) -> str:
    """The confirmation after START."""
    return (
        f"{fi_name}: you are subscribed to SMS alerts again. Reply HELP for help, STOP to opt out."
    )

"""Texts the conversation sends on its own (alert texts come from the rule file)."""

from __future__ import annotations

from fiflow.domain.conversations import OpenAlert


def clarify(fi_name: str, alerts: list[OpenAlert]) -> str:
    """Asks which alert a code-less reply meant."""
    listed = "; ".join(f"{a.summary}: code {a.reply_code}" for a in alerts)
    return (
        f"{fi_name}: you have {len(alerts)} open alerts ({listed}). Reply YES or NO with the code."
    )


def unknown_code(fi_name: str, code: str, alerts: list[OpenAlert]) -> str:
    """A code that matches none of the open alerts."""
    listed = "; ".join(f"{a.summary}: code {a.reply_code}" for a in alerts)
    return (
        f"{fi_name}: code {code} doesn't match an open alert ({listed}). "
        "Reply YES or NO with the code."
    )


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

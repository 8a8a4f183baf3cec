"""Reply correlation, property-tested: which alert each customer message reaches.

The machine under test is the conversation's own domain code, driven the way
ConversationWorkflow drives it (`accept_inbound` for every delivery, then `parse_reply` and
`route_message` for each queued message in arrival order, `close_alert` on a forward and on
an alert's own close, `register_alert` for each new alert). The oracle is separate: it knows
which alert the customer meant (the alert whose code they typed, or the only one open), from
how the test built the message, not from parsing it.

Deliveries are duplicated (the provider retries a webhook with the same MessageSid) and
reordered (a retry overtakes later messages); the oracle judges each message against what is
open when the conversation handles it, as the workflow does.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fiflow.domain.alerts import ReplyOutcome
from fiflow.domain.conversations import (
    InboundMessage,
    Route,
)
from fiflow.domain.keys import reply_code_candidates
from fiflow.domain.replies import ReplyKind, parse_reply
from tests.domain.conversation_machine import Machine

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
T = TypeVar("T")

# Alert IDs whose first-choice reply codes collide in pairs (al-022/al-088 both prefer 7107,
# al-013/al-188 1775, al-121/al-217 1233), so a newer alert can draw a closed alert's code.
ALERT_IDS = [
    "al-022", "al-088", "al-013", "al-188", "al-121", "al-217",
    "al-300", "al-301", "al-302", "al-303", "al-304", "al-305",
]  # fmt: skip

# Every phrase with the meaning the customer gives it; typos included. Labelled by hand, and
# the labels are checked once below (test_phrase_table_reads_as_labelled), so the oracle
# never learns a meaning from the parser it judges.
YES_WORDS = [
    "yes", "YES", "Yes!", "y", "yeah", "yep", "yup", "ok", "k", "confirm", "correct", "si",
    "it was me", "that was me", "yes please",
    "yse", "yess", "yrs", "yez", "yeas", "yeha", "confrim", "confirn", "ys",
]  # fmt: skip
NO_WORDS = [
    "no", "NO", "No.", "n", "nope", "nah", "not me", "wasn't me", "wasnt me", "fraud",
    "not mine", "no thanks",
    "nop", "noo", "nopr", "npoe", "nooe", "n0",
]  # fmt: skip
STOP_WORDS = ["STOP", "stop", "Stop.", "UNSUBSCRIBE", "cancel", "END", "quit", "stop all"]
START_WORDS = ["START", "start", "Start", "unstop", "subscribe"]
HELP_WORDS = ["HELP", "help", "info"]
# Keyword typos and chatter: never an answer, never an opt-out or opt-in.
UNREADABLE = ["stpo", "sotp", "hlep", "strat", "what is this", "?", "yes no", "thanks", "okk"]
# Where the code goes; {w} is the answer, {c} the code. Glued only to one-word answers.
LAYOUTS = ["{w} {c}", "{c} {w}", "{w}, {c}", "{c}: {w}", "{W} {c}", "  {w}   {c} "]
GLUED = "{w}{c}"

# Four-digit codes no alert of the pool could ever draw: a customer's wrong code.
_POOL_CODES = {c for a in ALERT_IDS for c in reply_code_candidates(a)}
WRONG_CODES = [c for c in (f"{n}" for n in range(1000, 10000, 97)) if c not in _POOL_CODES][:20]


def test_phrase_table_reads_as_labelled() -> None:
    """The oracle's labels, checked once: a change to the parser shows up here first."""
    for words, kind in (
        (YES_WORDS, ReplyKind.YES),
        (NO_WORDS, ReplyKind.NO),
        (STOP_WORDS, ReplyKind.STOP),
        (START_WORDS, ReplyKind.START),
        (HELP_WORDS, ReplyKind.HELP),
        (UNREADABLE, ReplyKind.UNKNOWN),
    ):
        for w in words:
            assert parse_reply(w).kind is kind, w
            assert parse_reply(w).code is None, w
    for w in YES_WORDS + NO_WORDS:
        for layout in LAYOUTS:
            text = layout.format(w=w, W=w.upper(), c="4821")
            assert parse_reply(text).code == "4821", text


# --- the oracle -----------------------------------------------------------------------------


@dataclass
class Sent:
    """One message as the customer meant it."""

    message_id: str
    body: str
    kind: ReplyKind  # the meaning the test gave it
    target: str | None = None  # the alert whose code it carries
    code: str | None = None  # the code it carries (an alert's, or a wrong one)


@dataclass
class Oracle:
    """What must happen, from the customer's intent and what is open when it is handled."""

    open: dict[str, str] = field(default_factory=dict)  # alert -> code, in registration order
    closed: dict[str, str] = field(default_factory=dict)  # alert -> code
    codes: dict[str, str] = field(default_factory=dict)  # every alert's code, once drawn
    opted_out: bool | None = None
    handled: set[str] = field(default_factory=set)

    def expect(self, msg: Sent) -> tuple[Route, str | None]:
        """The route and alert the message must get (the alert only where it matters)."""
        if msg.kind is ReplyKind.STOP:
            return Route.OPT_OUT, None
        if msg.kind is ReplyKind.START:
            return Route.OPT_IN, None
        if msg.kind is ReplyKind.HELP:
            return Route.HELP, None
        if msg.kind is ReplyKind.UNKNOWN:
            return Route.NOT_UNDERSTOOD, None
        if msg.code is not None:
            if msg.target is not None and msg.target in self.open:
                return Route.FORWARD, msg.target
            if msg.target is not None:  # answered or closed before this reply was handled
                return Route.EXPIRED, msg.target
            return (Route.UNKNOWN_CODE if self.open else Route.NO_OPEN_ALERT), None
        if len(self.open) == 1:
            return Route.FORWARD, next(iter(self.open))
        if len(self.open) > 1:
            return Route.CLARIFY, None  # never a guess
        return (Route.EXPIRED if self.closed else Route.NO_OPEN_ALERT), None

    def close(self, alert_id: str) -> None:
        if alert_id in self.open:
            self.closed[alert_id] = self.open.pop(alert_id)


class Choices:
    """Decodes one drawn integer into a step's choices (one draw per step keeps 1,000+ cases
    fast; hypothesis still shrinks each integer toward 0, the simplest step)."""

    def __init__(self, value: int) -> None:
        self._value = value

    def pick(self, options: Sequence[T]) -> T:
        self._value, i = divmod(self._value, len(options))
        return options[i]


def _compose(pick: Choices, kind: ReplyKind, code: str | None) -> str:
    w = pick.pick(YES_WORDS if kind is ReplyKind.YES else NO_WORDS)
    if code is None:
        return w
    layout = pick.pick(LAYOUTS + ([GLUED] if w.isalpha() else []))
    return layout.format(w=w, W=w.upper(), c=code)


MESSAGE_KINDS = ["coded", "coded", "coded", "plain", "plain", "wrong_code", "stop", "start",
                 "help", "unreadable"]  # fmt: skip
ANSWERS = [ReplyKind.YES, ReplyKind.NO]
KEYWORDS = {
    "stop": (STOP_WORDS, ReplyKind.STOP),
    "start": (START_WORDS, ReplyKind.START),
    "help": (HELP_WORDS, ReplyKind.HELP),
    "unreadable": (UNREADABLE, ReplyKind.UNKNOWN),
}


def new_message(pick: Choices, oracle: Oracle, n: int) -> Sent:
    """A message the customer sends now, knowing the codes of the alerts texted so far."""
    mid = f"SM{n:04d}"
    choice = pick.pick(MESSAGE_KINDS)
    if choice == "coded" and oracle.codes:
        target = pick.pick(sorted(oracle.codes))
        kind = pick.pick(ANSWERS)
        code = oracle.codes[target]
        return Sent(mid, _compose(pick, kind, code), kind, target, code)
    if choice == "wrong_code":
        kind, code = pick.pick(ANSWERS), pick.pick(WRONG_CODES)
        return Sent(mid, _compose(pick, kind, code), kind, None, code)
    if choice in ("coded", "plain"):
        kind = pick.pick(ANSWERS)
        return Sent(mid, _compose(pick, kind, None), kind)
    words, kind = KEYWORDS[choice]
    return Sent(mid, pick.pick(words), kind)


ACTIONS = ["register", "register", "close", "send", "send", "deliver", "deliver", "deliver"]
PAUSES = [0, 1, 30, 600]


@settings(max_examples=1200, deadline=None, derandomize=True)
@given(
    steps=st.lists(st.integers(min_value=0, max_value=2**40), min_size=4, max_size=30),
    shuffle=st.randoms(use_true_random=False),
)
def test_every_reply_reaches_the_alert_it_was_meant_for(
    steps: list[int], shuffle: random.Random
) -> None:
    machine, oracle = Machine(), Oracle()
    in_flight: list[Sent] = []  # sent, not yet delivered (or to be delivered again)
    delivered: list[str] = []
    at = T0
    sent_count = 0
    for step in steps:
        pick = Choices(step)
        at += timedelta(seconds=pick.pick(PAUSES))
        action = pick.pick(ACTIONS)
        if action == "register":
            alert_id = pick.pick(ALERT_IDS)
            code = machine.register(alert_id, at)
            if alert_id in oracle.codes:
                # A retried registration gets the same answer and opens nothing new.
                assert code == oracle.codes[alert_id]
            else:
                oracle.codes[alert_id] = code
                oracle.open[alert_id] = code
            open_codes = [a.reply_code for a in machine.state.open_alerts]
            assert len(open_codes) == len(set(open_codes)), "two open alerts share a code"
        elif action == "close" and oracle.open:
            alert_id = pick.pick(sorted(oracle.open))
            machine.alert_closed(alert_id, at)  # its escalation ran out (or push answered it)
            oracle.close(alert_id)
        elif action == "send":
            sent_count += 1
            msg = new_message(pick, oracle, sent_count)
            in_flight.append(msg)
        elif action == "deliver" and in_flight:
            # Any message in flight may arrive next (reordering); it may stay for a retry.
            i = pick.pick(range(len(in_flight)))
            msg = in_flight[i] if pick.pick([False, True]) else in_flight.pop(i)
            _deliver(machine, oracle, msg, at, delivered)
    # The provider delivers whatever is still in flight, in a shuffled order.
    shuffle.shuffle(in_flight)
    for msg in in_flight:
        at += timedelta(seconds=1)
        _deliver(machine, oracle, msg, at, delivered)

    # Every message handled once: nothing lost, nothing answered twice.
    decided = [d.message_id for d in machine.decisions]
    assert sorted(decided) == sorted(set(delivered))
    assert len(decided) == len(set(decided))
    # An alert takes at most one reply.
    forwarded = [d.alert_id for d in machine.decisions if d.route is Route.FORWARD]
    assert len(forwarded) == len(set(forwarded))


def _deliver(
    machine: Machine, oracle: Oracle, msg: Sent, at: datetime, delivered: list[str]
) -> None:
    """Deliver one message and hold the machine's decision against the oracle's."""
    before = len(machine.decisions)
    machine.deliver(InboundMessage(message_id=msg.message_id, body=msg.body, received_at=at), at)
    new = machine.decisions[before:]
    if msg.message_id in oracle.handled:
        assert new == [], f"{msg.message_id} handled again: {new}"
        return
    oracle.handled.add(msg.message_id)
    delivered.append(msg.message_id)
    [decision] = new
    route, alert_id = oracle.expect(msg)
    where = f"{msg.body!r} (meant for {msg.target}, open {oracle.open}): {decision}"
    assert decision.route is route, where
    if route is Route.FORWARD:
        assert decision.alert_id == alert_id, "applied to the wrong alert: " + where
        expected = ReplyOutcome.CONFIRM if msg.kind is ReplyKind.YES else ReplyOutcome.CONTEST
        assert decision.outcome is expected, where
        assert alert_id is not None
        oracle.close(alert_id)
    elif route is Route.EXPIRED and alert_id is not None:
        assert decision.alert_id == alert_id, where
    else:
        assert decision.outcome is None, where
    if route is Route.CLARIFY:
        assert decision.candidates == list(oracle.open.values()), where
    if route in (Route.OPT_OUT, Route.OPT_IN):
        oracle.opted_out = route is Route.OPT_OUT
    assert machine.state.sms_opted_out == oracle.opted_out
    assert [a.alert_id for a in machine.state.open_alerts] == list(oracle.open)


@pytest.mark.parametrize(("first", "second"), [("al-022", "al-088"), ("al-013", "al-188")])
def test_a_late_reply_to_a_closed_alert_never_lands_on_a_newer_one(first: str, second: str) -> None:
    """The pair's first-choice codes collide: the newer alert must not take the closed one's."""
    machine = Machine()
    code = machine.register(first, T0)
    machine.alert_closed(first, T0 + timedelta(minutes=5))
    newer = machine.register(second, T0 + timedelta(minutes=6))
    assert reply_code_candidates(second)[0] == code  # the collision this test is about
    assert newer != code
    machine.deliver(InboundMessage(message_id="SM1", body=f"YES {code}", received_at=T0), T0)
    [decision] = machine.decisions
    assert (decision.route, decision.alert_id) == (Route.EXPIRED, first)

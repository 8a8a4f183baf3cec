"""spend_auto_reply: the per-address limit on answers the conversation sends on its own."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from fiflow.domain.conversations import (
    UNSOLICITED_ROUTES,
    AutoReplyLimit,
    ConversationInput,
    Route,
    spend_auto_reply,
)

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
LIMIT = AutoReplyLimit(max_answers=3, window=timedelta(hours=1))


def spend_many(times: list[datetime], limit: AutoReplyLimit = LIMIT) -> list[bool]:
    """Whether each of a series of answers may go out, carrying the state along."""
    sent: list[datetime] = []
    allowed = []
    for at in times:
        ok, sent = spend_auto_reply(sent, limit, at)
        allowed.append(ok)
    return allowed


def test_the_limit_is_reached_then_silence() -> None:
    times = [T0 + timedelta(seconds=n) for n in range(10)]
    assert spend_many(times) == [True] * 3 + [False] * 7


def test_the_window_slides_answers_resume_as_old_ones_age_out() -> None:
    times = [
        T0,
        T0 + timedelta(minutes=10),
        T0 + timedelta(minutes=20),
        T0 + timedelta(minutes=59),  # all three still inside the hour
        T0 + timedelta(hours=1),  # the first has just left the window
        T0 + timedelta(hours=1, minutes=5),  # the second is still in it
    ]
    assert spend_many(times) == [True, True, True, False, True, False]


def test_silence_does_not_extend_the_window() -> None:
    # Suppressed messages are not sends: a flood never pushes the next answer further away.
    sent = [T0, T0, T0]
    for minute in range(1, 60):
        ok, sent = spend_auto_reply(sent, LIMIT, T0 + timedelta(minutes=minute))
        assert not ok
    assert sent == [T0, T0, T0]
    ok, sent = spend_auto_reply(sent, LIMIT, T0 + timedelta(hours=1))
    assert ok and sent == [T0 + timedelta(hours=1)]


def test_the_kept_times_stay_bounded_by_the_limit() -> None:
    sent: list[datetime] = []
    for n in range(500):
        _, sent = spend_auto_reply(sent, LIMIT, T0 + timedelta(minutes=7 * n))
        assert len(sent) <= LIMIT.max_answers
    # Times older than the window are dropped even when the limit is not reached.
    _, sent = spend_auto_reply(sent, LIMIT, T0 + timedelta(days=30))
    assert sent == [T0 + timedelta(days=30)]


def test_a_zero_limit_never_answers() -> None:
    assert spend_many([T0, T0 + timedelta(days=1)], AutoReplyLimit(max_answers=0)) == [
        False,
        False,
    ]


def test_the_input_is_not_modified() -> None:
    sent = [T0]
    spend_auto_reply(sent, LIMIT, T0 + timedelta(minutes=1))
    assert sent == [T0]


@pytest.mark.parametrize(
    "kw", [{"max_answers": -1}, {"max_answers": 101}, {"window": timedelta(0)}]
)
def test_limits_outside_the_bounds_are_refused(kw: dict) -> None:
    with pytest.raises(ValidationError):
        AutoReplyLimit(**kw)


def test_what_counts_as_unsolicited() -> None:
    # Forwarding to an alert and the (carrier-required) opt-out confirmation are never limited.
    assert Route.FORWARD not in UNSOLICITED_ROUTES
    assert Route.OPT_OUT not in UNSOLICITED_ROUTES
    assert {
        Route.NO_OPEN_ALERT,
        Route.EXPIRED,
        Route.UNKNOWN_CODE,
        Route.NOT_UNDERSTOOD,
        Route.CLARIFY,
        Route.HELP,
        Route.OPT_IN,
    } == UNSOLICITED_ROUTES


def test_conversations_default_to_three_an_hour() -> None:
    inp = ConversationInput(address="+15550000001", address_digest="d")
    assert inp.auto_replies == AutoReplyLimit(max_answers=3, window=timedelta(hours=1))

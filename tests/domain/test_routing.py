"""route_message: where a customer's message goes, given its open and recently closed alerts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from fiflow.domain.alerts import AlertOutcome, ReplyOutcome
from fiflow.domain.conversations import (
    ClosedAlert,
    OpenAlert,
    Route,
    RoutingDecision,
    keep_last,
    route_message,
)
from fiflow.domain.replies import ParsedReply, ReplyKind, parse_reply

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def open_alert(alert_id: str, code: str, minutes: int = 0) -> OpenAlert:
    return OpenAlert(
        alert_id=alert_id,
        reply_code=code,
        summary=f"ACME {alert_id}",
        registered_at=T0 + timedelta(minutes=minutes),
    )


def closed_alert(alert_id: str, code: str, minutes: int = 0) -> ClosedAlert:
    return ClosedAlert(
        alert_id=alert_id,
        reply_code=code,
        outcome=AlertOutcome.NO_REPLY,
        closed_at=T0 + timedelta(minutes=minutes),
    )


def route(
    text: str,
    open_alerts: list[OpenAlert] | None = None,
    closed_alerts: list[ClosedAlert] | None = None,
) -> RoutingDecision:
    return route_message("SM1", parse_reply(text), open_alerts or [], closed_alerts or [], T0)


def test_single_open_alert_takes_a_codeless_yes() -> None:
    decision = route("YES", [open_alert("al-a", "4821")])
    assert decision.route is Route.FORWARD
    assert decision.alert_id == "al-a"
    assert decision.outcome is ReplyOutcome.CONFIRM


def test_single_open_alert_takes_a_codeless_no_as_contest() -> None:
    decision = route("nope", [open_alert("al-a", "4821")])
    assert decision.route is Route.FORWARD
    assert decision.alert_id == "al-a"
    assert decision.outcome is ReplyOutcome.CONTEST


def test_decision_records_message_and_time() -> None:
    decision = route_message(
        "SM-xyz", ParsedReply(kind=ReplyKind.YES), [open_alert("al-a", "4821")], [], T0
    )
    assert decision.message_id == "SM-xyz"
    assert decision.at == T0


def test_two_open_alerts_and_no_code_asks_which_one() -> None:
    decision = route("yes", [open_alert("al-a", "4821"), open_alert("al-b", "1937", minutes=5)])
    assert decision.route is Route.CLARIFY
    assert sorted(decision.candidates) == ["1937", "4821"]
    assert decision.alert_id is None
    assert decision.outcome is None


@pytest.mark.parametrize(
    ("text", "alert_id", "outcome"),
    [
        ("YES 1937", "al-b", ReplyOutcome.CONFIRM),
        ("4821 no", "al-a", ReplyOutcome.CONTEST),
        ("no1937", "al-b", ReplyOutcome.CONTEST),
    ],
)
def test_coded_reply_goes_to_the_matching_alert(
    text: str, alert_id: str, outcome: ReplyOutcome
) -> None:
    alerts = [open_alert("al-a", "4821"), open_alert("al-b", "1937", minutes=5)]
    decision = route(text, alerts)
    assert decision.route is Route.FORWARD
    assert decision.alert_id == alert_id
    assert decision.outcome is outcome


def test_coded_reply_with_one_open_alert_must_still_match() -> None:
    decision = route("YES 5555", [open_alert("al-a", "4821")])
    assert decision.route is Route.UNKNOWN_CODE
    assert decision.alert_id is None
    assert decision.candidates == ["4821"]


def test_unknown_code_with_open_alerts_offers_the_open_codes() -> None:
    decision = route("no 5555", [open_alert("al-a", "4821"), open_alert("al-b", "1937")])
    assert decision.route is Route.UNKNOWN_CODE
    assert sorted(decision.candidates) == ["1937", "4821"]
    assert decision.outcome is None


def test_code_of_a_closed_alert_is_expired_even_with_others_open() -> None:
    decision = route("YES 7777", [open_alert("al-a", "4821")], [closed_alert("al-old", "7777")])
    assert decision.route is Route.EXPIRED
    assert decision.alert_id == "al-old"
    assert decision.outcome is None


def test_code_of_a_closed_alert_with_nothing_open_is_expired() -> None:
    decision = route("no 7777", [], [closed_alert("al-old", "7777")])
    assert decision.route is Route.EXPIRED
    assert decision.alert_id == "al-old"


def test_reused_code_goes_to_the_open_alert_not_the_closed_one() -> None:
    decision = route("YES 4821", [open_alert("al-new", "4821")], [closed_alert("al-old", "4821")])
    assert decision.route is Route.FORWARD
    assert decision.alert_id == "al-new"


def test_closed_code_reported_against_the_latest_closed_alert() -> None:
    closed = [closed_alert("al-1", "7777"), closed_alert("al-2", "7777", minutes=10)]
    assert route("YES 7777", [], closed).alert_id == "al-2"


def test_code_shared_by_two_open_alerts_asks_which_one() -> None:
    decision = route("yes 4821", [open_alert("al-a", "4821"), open_alert("al-b", "4821")])
    assert decision.route is Route.CLARIFY
    assert decision.alert_id is None


def test_nothing_open_nothing_closed() -> None:
    assert route("YES").route is Route.NO_OPEN_ALERT
    assert route("YES 4821").route is Route.NO_OPEN_ALERT


def test_nothing_open_but_recently_closed_is_expired() -> None:
    closed = [closed_alert("al-1", "1111"), closed_alert("al-2", "2222", minutes=10)]
    decision = route("yes", [], closed)
    assert decision.route is Route.EXPIRED
    assert decision.alert_id == "al-2"
    assert decision.outcome is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [("STOP", Route.OPT_OUT), ("unsubscribe", Route.OPT_OUT), ("START", Route.OPT_IN),
     ("HELP", Route.HELP)],
)  # fmt: skip
@pytest.mark.parametrize("n_open", [0, 1, 2])
def test_keywords_route_regardless_of_open_alerts(text: str, expected: Route, n_open: int) -> None:
    alerts = [open_alert("al-a", "4821"), open_alert("al-b", "1937")][:n_open]
    decision = route(text, alerts, [closed_alert("al-old", "7777")])
    assert decision.route is expected
    assert decision.alert_id is None
    assert decision.outcome is None


def test_not_understood_offers_the_open_codes() -> None:
    decision = route("what is this?", [open_alert("al-a", "4821")])
    assert decision.route is Route.NOT_UNDERSTOOD
    assert decision.candidates == ["4821"]
    assert decision.alert_id is None


def test_bare_code_is_not_an_answer() -> None:
    decision = route("4821", [open_alert("al-a", "4821")])
    assert decision.route is Route.NOT_UNDERSTOOD
    assert decision.outcome is None


def test_keep_last_keeps_the_newest() -> None:
    assert keep_last([1, 2, 3, 4, 5], 3) == [3, 4, 5]
    assert keep_last([1, 2, 3], 3) == [1, 2, 3]
    assert keep_last([1, 2], 5) == [1, 2]
    assert keep_last([], 5) == []


def test_keep_last_bounds_growth() -> None:
    items: list[int] = []
    for i in range(100):
        items = keep_last([*items, i], 10)
        assert len(items) <= 10
    assert items == list(range(90, 100))


def test_keep_last_zero_keeps_nothing() -> None:
    assert keep_last([1, 2, 3], 0) == []

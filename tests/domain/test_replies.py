"""parse_reply: what a customer's free-text SMS means, before it is matched to an alert."""

from __future__ import annotations

import pytest

from fiflow.domain.replies import ParsedReply, ReplyKind, parse_reply


@pytest.mark.parametrize(
    "text",
    ["YES", "Y", "yes", "y", "yes.", "Yes!", "yeah", "Yeah!!", "yep", "ok", "  yEs  ", "ＹＥＳ"],
)
def test_plain_yes(text: str) -> None:
    assert parse_reply(text) == ParsedReply(kind=ReplyKind.YES, code=None)


@pytest.mark.parametrize("text", ["yse", "yess", "yees", "yeas", "yup!", "confrim"])
def test_yes_with_typos(text: str) -> None:
    assert parse_reply(text).kind is ReplyKind.YES


@pytest.mark.parametrize(
    "text", ["NO", "N", "no", "n", "nope", "No.", "no!!", "Nope.", "nah", "not me", "Wasn't me"]
)
def test_plain_no(text: str) -> None:
    assert parse_reply(text) == ParsedReply(kind=ReplyKind.NO, code=None)


@pytest.mark.parametrize("text", ["nopr", "npoe", "noope"])
def test_no_with_typos(text: str) -> None:
    assert parse_reply(text).kind is ReplyKind.NO


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("YES 4821", ReplyKind.YES),
        ("yes 4821", ReplyKind.YES),
        ("4821 yes", ReplyKind.YES),
        ("Yes, 4821", ReplyKind.YES),
        ("YES-4821", ReplyKind.YES),
        ("yes4821", ReplyKind.YES),
        ("y 4821", ReplyKind.YES),
        ("yse 4821", ReplyKind.YES),
        ("YES #4821!", ReplyKind.YES),
        ("no 4821", ReplyKind.NO),
        ("NO 4821!", ReplyKind.NO),
        ("4821 no.", ReplyKind.NO),
        ("n4821", ReplyKind.NO),
        ("nope 4821", ReplyKind.NO),
    ],
)
def test_answer_with_code_extracts_the_code(text: str, kind: ReplyKind) -> None:
    assert parse_reply(text) == ParsedReply(kind=kind, code="4821")


def test_full_width_digits_are_read_as_a_code() -> None:
    assert parse_reply("YES ４８２１") == ParsedReply(kind=ReplyKind.YES, code="4821")


def test_two_different_codes_give_no_code() -> None:
    # Which alert was meant is unclear: the conversation must ask rather than guess.
    parsed = parse_reply("yes 4821 1234")
    assert parsed.kind is ReplyKind.YES
    assert parsed.code is None


def test_number_that_is_not_four_digits_is_not_a_code() -> None:
    assert parse_reply("yes 48211").code is None
    assert parse_reply("yes 482").code is None


def test_code_alone_is_not_an_answer_but_keeps_the_code() -> None:
    assert parse_reply("4821") == ParsedReply(kind=ReplyKind.UNKNOWN, code="4821")


@pytest.mark.parametrize("text", ["yes", "Yes", "YES", "yEs", "yes!", "yes?", "...yes...", "¡yes!"])
def test_case_and_punctuation_do_not_matter(text: str) -> None:
    assert parse_reply(text).kind is ReplyKind.YES


@pytest.mark.parametrize(
    "text",
    [
        "STOP",
        "stop",
        "Stop.",
        " STOP ",
        "STOPALL",
        "stop all",
        "UNSUBSCRIBE",
        "unsubscribe",
        "CANCEL",
        "END",
        "end",
        "QUIT",
        "quit!",
        "OPTOUT",
        "opt out",
        "REVOKE",
    ],
)
def test_opt_out_keywords(text: str) -> None:
    assert parse_reply(text) == ParsedReply(kind=ReplyKind.STOP)


@pytest.mark.parametrize("text", ["START", "start", "Start!", "UNSTOP", "unstop", "opt in"])
def test_opt_in_keywords(text: str) -> None:
    assert parse_reply(text) == ParsedReply(kind=ReplyKind.START)


@pytest.mark.parametrize("text", ["HELP", "help", "Help?", "INFO", "info"])
def test_help_keywords(text: str) -> None:
    assert parse_reply(text) == ParsedReply(kind=ReplyKind.HELP)


@pytest.mark.parametrize(
    "text", ["please stop calling me about the end of my card", "help me 4821"]
)
def test_keywords_inside_a_sentence_are_not_keywords(text: str) -> None:
    assert parse_reply(text).kind not in {ReplyKind.STOP, ReplyKind.START, ReplyKind.HELP}


@pytest.mark.parametrize(
    "text",
    ["", "   ", "?!", "asdf", "hello there", "what is this", "👍", "yes no", "maybe"],
)
def test_gibberish_is_unknown(text: str) -> None:
    assert parse_reply(text).kind is ReplyKind.UNKNOWN


def test_yes_and_no_are_never_confused() -> None:
    yes = ["YES", "yes", "yeah", "yse", "yess", "y"]
    no = ["NO", "no", "nope", "n", "No."]
    assert {parse_reply(t).kind for t in yes} == {ReplyKind.YES}
    assert {parse_reply(t).kind for t in no} == {ReplyKind.NO}

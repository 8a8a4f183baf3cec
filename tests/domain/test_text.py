"""Cleaning outside text for messages, and counting SMS segments."""

from __future__ import annotations

import unicodedata
from datetime import UTC, datetime

import pytest

from fiflow.domain import messages
from fiflow.domain.conversations import OpenAlert
from fiflow.domain.rules import render_sms
from fiflow.domain.text import (
    ELLIPSIS,
    SmsEncoding,
    clean_text,
    fit_sms,
    shorten,
    sms_segments,
)


def no_hidden(text: str) -> bool:
    """No control or format characters left in text."""
    return not any(unicodedata.category(ch) in ("Cc", "Cf") for ch in text)


# --- cleaning ---------------------------------------------------------------------------


def test_clean_removes_rlo_bell_and_newline() -> None:
    assert clean_text("ACME\u202e\x07\nInc") == "ACME Inc"


@pytest.mark.parametrize(
    "char",
    [
        *"\u202a\u202b\u202c\u202d\u202e",
        *"\u2066\u2067\u2068\u2069",
        "\u200e",  # LRM
        "\u200f",  # RLM
        "\u061c",  # ALM
        "\u200b",  # zero-width space
        "\u200c",  # zero-width non-joiner
        "\u200d",  # zero-width joiner
        "\u2060",  # word joiner
        "\ufeff",  # BOM
        "\x00",
        "\x1b",
        "\x7f",
        "\x9b",  # C1 control (CSI)
    ],
)
def test_clean_drops_hidden_and_control_chars(char: str) -> None:
    assert clean_text(f"AC{char}ME") == "ACME"


def test_clean_collapses_every_kind_of_whitespace() -> None:
    assert clean_text("  ACME\t\t Inc\r\n\u00a0Store\u2028 ") == "ACME Inc Store"


def test_clean_reversed_text_stays_in_logical_order() -> None:
    # A classic spoof: "\u202egpj.exe" displays as "exe.jpg".
    assert clean_text("photo\u202egpj.exe") == "photogpj.exe"


def test_clean_caps_the_length_with_an_ellipsis() -> None:
    cleaned = clean_text("A" * 30 + " Store of Everything", 20)
    assert len(cleaned) == 20
    assert cleaned == "A" * 17 + ELLIPSIS


def test_clean_cap_does_not_touch_short_text() -> None:
    assert clean_text("ACME Inc", 40) == "ACME Inc"


def test_clean_cap_removes_a_trailing_space_before_the_ellipsis() -> None:
    assert clean_text("ACME Incorporated", 8) == "ACME" + ELLIPSIS


def test_clean_normalises_to_nfc() -> None:
    decomposed = "Cafe\u0301"
    cleaned = clean_text(decomposed)
    assert cleaned == "Caf\u00e9"
    assert len(cleaned) == 4


def test_clean_hidden_char_between_letter_and_accent_still_composes() -> None:
    assert clean_text("Cafe\u200b\u0301") == "Caf\u00e9"


def test_clean_keeps_ordinary_international_text() -> None:
    assert clean_text("Café Zürich 東京 😀") == "Café Zürich 東京 😀"


def test_clean_drops_lone_surrogates() -> None:
    assert clean_text("AC\ud800ME") == "ACME"


def test_shorten_rejects_a_negative_length() -> None:
    with pytest.raises(ValueError):
        shorten("x", -1)


# --- segments ---------------------------------------------------------------------------


def test_160_gsm_chars_are_one_segment() -> None:
    result = sms_segments("a" * 160)
    assert (result.encoding, result.units, result.segments) == (SmsEncoding.GSM7, 160, 1)


def test_161_gsm_chars_are_two_segments() -> None:
    result = sms_segments("a" * 161)
    assert (result.encoding, result.units, result.segments) == (SmsEncoding.GSM7, 161, 2)


def test_concatenated_gsm_parts_hold_153() -> None:
    assert sms_segments("a" * 306).segments == 2
    assert sms_segments("a" * 307).segments == 3
    assert sms_segments("a" * 459).segments == 3


@pytest.mark.parametrize("char", list("^{}\\[~]|€\f"))
def test_extension_chars_count_two(char: str) -> None:
    result = sms_segments(char)
    assert result.encoding is SmsEncoding.GSM7
    assert result.units == 2


def test_extension_chars_push_a_message_over() -> None:
    assert sms_segments("a" * 158 + "€").segments == 1
    assert sms_segments("a" * 159 + "€").segments == 2


def test_extension_char_is_not_split_across_parts() -> None:
    # 152 septets, then an escape pair: the pair moves whole to the second part.
    text = "a" * 152 + "€" + "a" * 152
    result = sms_segments(text)
    assert result.units == 306
    assert result.segments == 3


def test_gsm_basic_set_accents_stay_gsm() -> None:
    result = sms_segments("éèÄÖÑÜäöñüàΔΩ£¥§¿¡")
    assert result.encoding is SmsEncoding.GSM7


def test_one_non_gsm_char_switches_to_ucs2() -> None:
    result = sms_segments("a" * 69 + "ł")
    assert (result.encoding, result.units, result.segments) == (SmsEncoding.UCS2, 70, 1)
    assert sms_segments("a" * 70 + "ł").segments == 2


def test_concatenated_ucs2_parts_hold_67() -> None:
    assert sms_segments("ł" * 134).segments == 2
    assert sms_segments("ł" * 135).segments == 3


def test_emoji_is_two_utf16_units() -> None:
    result = sms_segments("😀")
    assert (result.encoding, result.units, result.segments) == (SmsEncoding.UCS2, 2, 1)
    assert sms_segments("a" * 68 + "😀").segments == 1
    assert sms_segments("a" * 69 + "😀").segments == 2


def test_surrogate_pair_is_not_split_across_parts() -> None:
    # 66 units, then a pair that would straddle the 67-unit boundary.
    text = "a" * 66 + "😀" + "a" * 66
    result = sms_segments(text)
    assert result.units == 134
    assert result.segments == 3


def test_empty_text_is_one_segment() -> None:
    assert sms_segments("").segments == 1


# --- fitting a rendered SMS -------------------------------------------------------------

TEMPLATE = "Bank: {merchant} {amount}. Reply YES {code} or NO {code}."


def test_fit_leaves_a_short_text_alone() -> None:
    values = {"merchant": "ACME Inc", "amount": "$1.00", "code": "1234"}
    text = render_sms(TEMPLATE, values, outside={"merchant"}, max_segments=1)
    assert text == "Bank: ACME Inc $1.00. Reply YES 1234 or NO 1234."


def test_fit_shortens_the_outside_value_and_keeps_the_rest() -> None:
    values = {"merchant": "M" * 300, "amount": "$1.00", "code": "1234"}
    text = render_sms(TEMPLATE, values, outside={"merchant"}, max_segments=1)
    assert sms_segments(text).segments == 1
    assert len(text) == 160  # shortened no more than needed
    assert text.endswith("$1.00. Reply YES 1234 or NO 1234.")
    assert "M" * 10 + ELLIPSIS in text


def test_fit_shortens_the_longest_outside_value_first() -> None:
    values = {"a": "A" * 200, "b": "B" * 20}
    text = fit_sms(lambda v: f"{v['a']} {v['b']}", values, outside={"a", "b"}, max_segments=1)
    assert sms_segments(text).segments == 1
    assert text.endswith(" " + "B" * 20)


def test_fit_a_non_gsm_outside_value_is_shortened_to_ucs2_limits() -> None:
    values = {"merchant": "ł" * 100, "amount": "$1.00", "code": "1234"}
    text = render_sms(TEMPLATE, values, outside={"merchant"}, max_segments=1)
    assert sms_segments(text).segments == 1
    assert text.endswith("Reply YES 1234 or NO 1234.")


def test_fit_cuts_the_text_as_a_last_resort() -> None:
    template = "X" * 400 + " {merchant}"
    text = render_sms(template, {"merchant": "ACME"}, outside={"merchant"}, max_segments=2)
    assert sms_segments(text).segments == 2
    assert len(text) == 306
    assert text.endswith(ELLIPSIS)


def test_fit_respects_the_maximum_for_many_segments() -> None:
    values = {"merchant": "M" * 2000, "amount": "$1.00", "code": "1234"}
    for maximum in (1, 2, 3, 5):
        text = render_sms(TEMPLATE, values, outside={"merchant"}, max_segments=maximum)
        assert sms_segments(text).segments == maximum


def test_fit_refuses_a_maximum_below_one() -> None:
    with pytest.raises(ValueError):
        fit_sms(lambda v: "x", {}, outside=(), max_segments=0)


# --- conversation texts -----------------------------------------------------------------


def open_alert(n: int, summary: str) -> OpenAlert:
    """An open alert with a summary as a (possibly old) registration stored it."""
    return OpenAlert(
        alert_id=f"al-{n}",
        reply_code=f"{1000 + n}",
        summary=summary,
        registered_at=datetime(2026, 11, 25, tzinfo=UTC),
    )


def test_clarify_cleans_summaries() -> None:
    text = messages.clarify(
        "Bank", [open_alert(1, "ACME\u202e\x07\nInc $1.00"), open_alert(2, "Shop $2.00")]
    )
    assert "ACME Inc $1.00: code 1001" in text
    assert no_hidden(text)


def test_clarify_with_many_long_summaries_stays_within_three_segments() -> None:
    alerts = [open_alert(n, f"{'Merchant ' * 8}{n} $10.00") for n in range(8)]
    text = messages.clarify("Bank", alerts)
    assert sms_segments(text).segments <= 3
    for alert in alerts:
        assert f"code {alert.reply_code}" in text
    assert text.endswith("Reply YES or NO with the code.")

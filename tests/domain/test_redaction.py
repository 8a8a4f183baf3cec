"""Provider error texts reduced to what is safe to keep."""

from __future__ import annotations

import logging

import httpx
import pytest

from fiflow.domain.redaction import (
    exception_summary,
    provider_error,
    safe_code,
    safe_traceback,
    scrub,
)
from fiflow.integrations.http import BusinessError, TransientError, check
from fiflow.integrations.telemetry import scrub_exceptions_in_logs


@pytest.mark.parametrize(
    "text",
    [
        "The 'To' number +12025550101 is not a valid phone number.",
        'No customer named "Jane Doe" at +1 (202) 555-0101',
        "card 4111 1111 1111 1111 declined for 8,765.43",
        "see https://crm.example/customers?phone=%2B12025550101",
        "mail jane.doe@example.com",
    ],
)
def test_scrub_masks_what_looks_like_data(text: str) -> None:
    scrubbed = scrub(text)
    for leaked in ("2025550101", "555-0101", "Jane", "1111", "8,765.43", "jane.doe", "%2B"):
        assert leaked not in scrubbed
    assert "[redacted]" in scrubbed


def test_scrub_keeps_short_numbers_and_caps_length() -> None:
    assert scrub("HTTP 503 after 30 s") == "HTTP 503 after 30 s"
    assert len(scrub("x" * 1000)) == 200
    assert scrub("a\nb\x00c") == "a b c"


def test_safe_code_keeps_codes_only() -> None:
    assert safe_code(21211) == "21211"
    assert safe_code("customer_not_found") == "customer_not_found"
    assert safe_code("+12025550101") == ""
    assert safe_code("12025550101") == ""
    assert safe_code("not a code") == ""
    assert safe_code(None) == "" and safe_code(True) == ""


def test_provider_error_uses_the_standard_phrase() -> None:
    assert provider_error(400, "21211") == "HTTP 400 Bad Request, code 21211"
    assert provider_error(599, "") == "HTTP 599 Unknown Status"


def _response(status: int, body: dict, reason: str = "") -> httpx.Response:
    request = httpx.Request("POST", "https://sms.example/Messages.json")
    extensions = {"reason_phrase": reason.encode()} if reason else {}
    return httpx.Response(status, json=body, request=request, extensions=extensions)


def test_a_provider_error_keeps_code_and_status_not_its_echo() -> None:
    echo = {"code": 21211, "message": "The 'To' number +12025550101 is not valid. Body: Hi Jane"}
    with pytest.raises(BusinessError) as refused:
        check("sms", _response(400, echo, reason="Bad +12025550101"))
    assert str(refused.value) == "sms: HTTP 400 Bad Request, code 21211"
    assert refused.value.code == "21211" and refused.value.status == 400
    with pytest.raises(TransientError) as failing:
        check("crm", _response(500, {"code": "+12025550101", "message": "Jane"}))
    assert str(failing.value) == "crm: HTTP 500 Internal Server Error"


# Built at run time: a traceback shows source lines, and data is never in the source.
PHONE = "+1202555" + "0101"
STREET = "42 Ma" + "in St"


def _raise_chain(phone: str, street: str) -> None:
    try:
        raise ValueError(f"input_value={phone!r}")
    except ValueError as exc:
        raise RuntimeError(f"for Jane at {street!r}") from exc


def test_safe_traceback_keeps_places_and_types_not_messages() -> None:
    with pytest.raises(RuntimeError) as caught:
        _raise_chain(PHONE, STREET)
    text = safe_traceback(caught.value)
    assert "ValueError: input_value=[redacted]" in text
    assert "RuntimeError: for Jane at [redacted]" in text
    assert "direct cause" in text and "_raise_chain" in text
    assert "2025550101" not in text and "Main St" not in text
    assert exception_summary(KeyError()) == "KeyError"


def test_logged_tracebacks_are_scrubbed(caplog: pytest.LogCaptureFixture) -> None:
    previous = logging.getLogRecordFactory()
    scrub_exceptions_in_logs()
    try:
        try:
            raise ValueError(f"number {PHONE}")
        except ValueError:
            logging.getLogger("some.library").exception("failed")
    finally:
        logging.setLogRecordFactory(previous)
    text = caplog.text
    assert "ValueError: number [redacted]" in text and "2025550101" not in text

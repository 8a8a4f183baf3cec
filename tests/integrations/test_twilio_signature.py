"""Our X-Twilio-Signature code agrees with the twilio package's RequestValidator."""

from __future__ import annotations

import pytest
from twilio.request_validator import RequestValidator

from fiflow.integrations.twilio_signature import compute_signature, is_valid_signature
from fiflow.sandbox.twilio_signature import compute_signature as sandbox_signature

TOKEN = "12345678901234567890123456789012"
URL = "https://fiflow.example.com/v1/webhooks/twilio/sms"
PARAMS = {
    "AccountSid": "AC00000000000000000000000000000000",
    "ApiVersion": "2010-04-01",
    "Body": "YES 4821",
    "From": "+15551234567",
    "MessageSid": "SM00000000000000000000000000000001",
    "NumMedia": "0",
    "NumSegments": "1",
    "SmsStatus": "received",
    "To": "+15557654321",
}


class MultiDict(dict):
    """The shape of a form with a repeated field (Flask's MultiDict), for RequestValidator."""

    def getall(self, name: str) -> list[str]:
        return list(self[name])


def test_valid_request_signed_the_same_both_ways() -> None:
    ours = compute_signature(TOKEN, URL, PARAMS)
    theirs = RequestValidator(TOKEN).compute_signature(URL, PARAMS)
    assert ours == theirs
    assert RequestValidator(TOKEN).validate(URL, PARAMS, ours)
    assert is_valid_signature(TOKEN, URL, PARAMS, theirs)


def test_signature_does_not_depend_on_param_order() -> None:
    reordered = dict(reversed(list(PARAMS.items())))
    assert compute_signature(TOKEN, URL, reordered) == compute_signature(TOKEN, URL, PARAMS)


def test_tampered_body_param_is_refused() -> None:
    signature = RequestValidator(TOKEN).compute_signature(URL, PARAMS)
    tampered = {**PARAMS, "Body": "NO 4821"}
    assert not RequestValidator(TOKEN).validate(URL, tampered, signature)
    assert not is_valid_signature(TOKEN, URL, tampered, signature)


def test_added_param_is_refused() -> None:
    signature = compute_signature(TOKEN, URL, PARAMS)
    extra = {**PARAMS, "ForwardedFrom": "+15550000000"}
    assert not RequestValidator(TOKEN).validate(URL, extra, signature)
    assert not is_valid_signature(TOKEN, URL, extra, signature)


def test_removed_param_is_refused() -> None:
    signature = compute_signature(TOKEN, URL, PARAMS)
    fewer = {k: v for k, v in PARAMS.items() if k != "Body"}
    assert not RequestValidator(TOKEN).validate(URL, fewer, signature)
    assert not is_valid_signature(TOKEN, URL, fewer, signature)


@pytest.mark.parametrize(
    "url",
    [
        "https://fiflow.example.com/v1/webhooks/twilio/sms-other",
        "https://evil.example.com/v1/webhooks/twilio/sms",
        "http://fiflow.example.com/v1/webhooks/twilio/sms",
        "https://fiflow.example.com/v1/webhooks/twilio/sms?x=1",
    ],
)
def test_tampered_url_is_refused(url: str) -> None:
    signature = RequestValidator(TOKEN).compute_signature(URL, PARAMS)
    assert not RequestValidator(TOKEN).validate(url, PARAMS, signature)
    assert not is_valid_signature(TOKEN, url, PARAMS, signature)


def test_wrong_token_is_refused() -> None:
    signature = RequestValidator("not-the-token").compute_signature(URL, PARAMS)
    assert signature != compute_signature(TOKEN, URL, PARAMS)
    assert not RequestValidator(TOKEN).validate(URL, PARAMS, signature)
    assert not is_valid_signature(TOKEN, URL, PARAMS, signature)


@pytest.mark.parametrize("signature", [None, ""])
def test_missing_signature_is_refused(signature: str | None) -> None:
    assert not is_valid_signature(TOKEN, URL, PARAMS, signature)
    assert not RequestValidator(TOKEN).validate(URL, PARAMS, signature or "")


def test_truncated_signature_is_refused() -> None:
    signature = compute_signature(TOKEN, URL, PARAMS)
    assert not is_valid_signature(TOKEN, URL, PARAMS, signature[:-2])


def test_unicode_params() -> None:
    params = {**PARAMS, "Body": "Sí, fui yo ✅ 4821 — ünïcødé 日本語", "FromCity": "MONTRÉAL"}
    ours = compute_signature(TOKEN, URL, params)
    assert ours == RequestValidator(TOKEN).compute_signature(URL, params)
    assert RequestValidator(TOKEN).validate(URL, params, ours)
    assert is_valid_signature(TOKEN, URL, params, ours)
    assert not is_valid_signature(TOKEN, URL, {**params, "Body": "Si, fui yo ✅ 4821"}, ours)


def test_keys_that_are_prefixes_of_each_other_sort_by_name() -> None:
    # Sorting "name+value" strings instead of names would put ReasonConferenceEnded first.
    params = {
        "Reason": "Participant left",
        "ReasonConferenceEnded": "participant-with-end-conference-on-exit-left",
        "Body": "yes",
        "Body0": "a",
        "BodyX": "b",
        "body": "lowercase is a different key",
        "MediaUrl0": "https://example.com/1.jpg",
        "MediaUrl10": "https://example.com/10.jpg",
        "MediaUrl2": "https://example.com/2.jpg",
    }
    ours = compute_signature(TOKEN, URL, params)
    assert ours == RequestValidator(TOKEN).compute_signature(URL, params)
    assert is_valid_signature(TOKEN, URL, params, ours)
    # Swapping values between look-alike keys changes the signature.
    swapped = {**params, "Body0": "b", "BodyX": "a"}
    assert not is_valid_signature(TOKEN, URL, swapped, ours)
    assert not RequestValidator(TOKEN).validate(URL, swapped, ours)


def test_repeated_key_with_several_values() -> None:
    params: dict[str, list[str]] = {
        "To": ["+15557654321"],
        "MessagingBinding.Address": ["+18550000000", "+18330000000"],
        "Body": ["yes"],
    }
    theirs = RequestValidator(TOKEN).compute_signature(URL, MultiDict(params))
    assert compute_signature(TOKEN, URL, params) == theirs
    # The values' order as received must not matter.
    reversed_values = {k: list(reversed(v)) for k, v in params.items()}
    assert is_valid_signature(TOKEN, URL, reversed_values, theirs)
    assert RequestValidator(TOKEN).validate(URL, MultiDict(reversed_values), theirs)


def test_empty_params() -> None:
    ours = compute_signature(TOKEN, URL, {})
    assert ours == RequestValidator(TOKEN).compute_signature(URL, {})
    assert is_valid_signature(TOKEN, URL, {}, ours)


@pytest.mark.parametrize(
    ("signed_url", "received_url"),
    [
        ("https://fiflow.example.com:443/sms", "https://fiflow.example.com/sms"),
        ("https://fiflow.example.com/sms", "https://fiflow.example.com:443/sms"),
        ("http://fiflow.example.com:80/sms", "http://fiflow.example.com/sms"),
        ("http://fiflow.example.com/sms?a=1", "http://fiflow.example.com:80/sms?a=1"),
        ("https://fiflow.example.com:443?a=1", "https://fiflow.example.com?a=1"),
    ],
)
def test_default_port_written_or_not(signed_url: str, received_url: str) -> None:
    # Twilio is not consistent about signing with the default port; both forms must pass.
    signature = RequestValidator(TOKEN).compute_signature(signed_url, PARAMS)
    assert RequestValidator(TOKEN).validate(received_url, PARAMS, signature)
    assert is_valid_signature(TOKEN, received_url, PARAMS, signature)


def test_non_default_port_is_part_of_the_url() -> None:
    signature = compute_signature(TOKEN, "https://fiflow.example.com:8443/sms", PARAMS)
    assert is_valid_signature(TOKEN, "https://fiflow.example.com:8443/sms", PARAMS, signature)
    assert not is_valid_signature(TOKEN, "https://fiflow.example.com:9443/sms", PARAMS, signature)
    assert not is_valid_signature(TOKEN, "https://fiflow.example.com/sms", PARAMS, signature)


@pytest.mark.parametrize(
    "url",
    [
        URL,
        "http://127.0.0.1:8765/v1/webhooks/twilio/sms",
        "http://localhost:8000/sms?tenant=fi-1",
    ],
)
def test_sandbox_signer_is_accepted_by_request_validator(url: str) -> None:
    params = {**PARAMS, "Body": "no 4821 ✋", "Reason": "x", "ReasonConferenceEnded": "y"}
    signature = sandbox_signature(TOKEN, url, params)
    assert signature == RequestValidator(TOKEN).compute_signature(url, params)
    assert RequestValidator(TOKEN).validate(url, params, signature)
    assert is_valid_signature(TOKEN, url, params, signature)
    assert not RequestValidator(TOKEN).validate(url, {**params, "Body": "yes 4821"}, signature)

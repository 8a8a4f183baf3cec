"""Phone numbers: one E.164 form for every way a number is written; invalid numbers refused."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from pydantic import BaseModel, ValidationError

from fiflow.domain.interactions import InteractionEventRequest
from fiflow.domain.keys import address_hash, conversation_workflow_id
from fiflow.domain.phones import (
    InvalidPhoneNumber,
    Phone,
    is_known_region,
    is_valid_phone,
    normalise_phone,
    phone_region,
)
from fiflow.domain.rules import RuleSetError, parse_alert_rule_set

RULES = Path(__file__).parents[2] / "fiflow" / "rules" / "alerts.yaml"


@pytest.mark.parametrize(
    "written",
    [
        "+12025550107",
        "+1 202-555-0107",
        "+1 (202) 555-0107",
        "+1.202.555.0107",
        " +1 202 555 0107\n",
        "tel:+1-202-555-0107",
    ],
)
def test_every_written_form_normalises_to_one_e164(written: str) -> None:
    assert normalise_phone(written) == "+12025550107"


def test_national_forms_need_a_default_region() -> None:
    assert normalise_phone("(202) 555-0107", default_region="US") == "+12025550107"
    assert normalise_phone("020 7946 0018", default_region="GB") == "+442079460018"
    with pytest.raises(InvalidPhoneNumber, match="international form"):
        normalise_phone("(202) 555-0107")


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "   ",
        "hello",
        "+15550000001",  # area code 555 does not exist: possible, not valid
        "+1202555010",  # a digit short
        "+120255501077",  # a digit long
        "+1 202-555-0107 ext. 12",  # a text cannot reach an extension
        "+999 1234567",  # no such country code
        "+1" + "2" * 80,  # too long to be anything
    ],
)
def test_invalid_numbers_are_refused_without_echoing_them(bad: str) -> None:
    with pytest.raises(InvalidPhoneNumber) as info:
        normalise_phone(bad)
    assert isinstance(info.value, ValueError)
    digits = "".join(ch for ch in bad if ch.isdigit())
    assert not digits or digits not in str(info.value)
    assert not is_valid_phone(bad)


@pytest.mark.parametrize(
    ("number", "region"),
    [
        ("+1 202-555-0107", "US"),
        ("+1 416-555-0123", "CA"),  # Toronto: same +1 as the US, told apart by area code
        ("+44 20 7946 0018", "GB"),
        ("+33 1 99 00 12 34", "FR"),
        ("+800 1234 5678", "001"),  # international freephone: no country
    ],
)
def test_region_of_a_number(number: str, region: str) -> None:
    assert phone_region(number) == region


def test_region_of_an_invalid_number_is_refused() -> None:
    with pytest.raises(InvalidPhoneNumber):
        phone_region("+15550000001")


def test_known_regions() -> None:
    assert is_known_region("US") and is_known_region("GB")
    assert not is_known_region("us") and not is_known_region("XX") and not is_known_region("001")


def test_the_same_number_written_two_ways_hashes_alike() -> None:
    crm = address_hash("secret", "+1 202-555-0107")
    inbound = address_hash("secret", "+12025550107")
    assert crm == inbound
    assert conversation_workflow_id("sms", crm) == conversation_workflow_id("sms", inbound)
    assert address_hash("secret", "+12025550108") != crm
    with pytest.raises(InvalidPhoneNumber):
        address_hash("secret", "+15550000001")


class _Contact(BaseModel):
    phone: Phone


def test_phone_field_holds_the_e164_form_and_refuses_bad_numbers() -> None:
    assert _Contact(phone="+1 202-555-0107").phone == "+12025550107"
    with pytest.raises(ValidationError) as info:
        _Contact(phone="+15550000001")
    assert "not a valid number" in str(info.value)


def test_interaction_caller_is_normalised_and_checked() -> None:
    base = {
        "event_id": "e1",
        "channel": "ivr",
        "type": "interaction_started",
        "occurred_at": "2026-11-25T12:00:00Z",
    }
    request = InteractionEventRequest.model_validate({**base, "caller": "+1 (202) 555-0107"})
    assert request.caller == "+12025550107"
    with pytest.raises(ValidationError, match="caller"):
        InteractionEventRequest.model_validate({**base, "caller": "+15550000001"})


def _rules(**changes: object) -> dict:
    data = yaml.safe_load(RULES.read_text())
    data.update(changes)
    return dict(data)


def test_shipped_rules_allow_texting_us_and_canada_only() -> None:
    assert parse_alert_rule_set(_rules()).sms_countries == ["US", "CA"]


def test_sms_countries_default_to_us_and_canada_when_a_rule_file_omits_them() -> None:
    data = _rules()
    del data["sms_countries"]
    assert parse_alert_rule_set(data).sms_countries == ["US", "CA"]


@pytest.mark.parametrize("countries", [[], ["US", "XX"], ["us"], ["USA"], [False]])
def test_sms_countries_must_be_known_iso_codes(countries: list) -> None:
    with pytest.raises(RuleSetError, match="sms_countries"):
        parse_alert_rule_set(_rules(sms_countries=countries))

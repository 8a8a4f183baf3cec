"""Phone numbers: one canonical form (E.164) for every number fiflow hashes, compares or texts.

A number can arrive written many ways ("+1 202-555-0107" in a CRM, "+12025550107" from the
SMS provider). Unless every entry point reduces it to the same string, the same customer
gets two conversations and an opt-out given on one misses the other.
"""

from __future__ import annotations

from typing import Annotated

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumber, PhoneNumberFormat
from pydantic import AfterValidator

# Longer input is not a phone number; it only costs parsing time.
MAX_INPUT_LENGTH = 64


class InvalidPhoneNumber(ValueError):
    """A phone number that cannot be parsed, or is not a valid number anywhere.

    The message never repeats the number: it is personal data and messages end up in logs.
    """


def _parse(raw: str, default_region: str | None) -> PhoneNumber:
    if not isinstance(raw, str) or not raw.strip():
        raise InvalidPhoneNumber("the phone number is empty")
    if len(raw) > MAX_INPUT_LENGTH:
        raise InvalidPhoneNumber(f"the phone number is longer than {MAX_INPUT_LENGTH} characters")
    try:
        number = phonenumbers.parse(raw, default_region)
    except NumberParseException:
        hint = "" if default_region else " (international form with +country code expected)"
        raise InvalidPhoneNumber(f"the phone number cannot be read{hint}") from None
    if number.extension:
        # A text cannot reach an extension; taking the main line instead would be a guess.
        raise InvalidPhoneNumber("the phone number has an extension")
    if not phonenumbers.is_valid_number(number):
        raise InvalidPhoneNumber("the phone number is not a valid number")
    return number


def normalise_phone(raw: str, default_region: str | None = None) -> str:
    """The number in E.164 ("+12025550107"); InvalidPhoneNumber when it is not a valid number."""
    return phonenumbers.format_number(_parse(raw, default_region), PhoneNumberFormat.E164)


def is_valid_phone(raw: str, default_region: str | None = None) -> bool:
    """Whether `normalise_phone` would accept the number."""
    try:
        _parse(raw, default_region)
    except InvalidPhoneNumber:
        return False
    return True


def phone_region(raw: str, default_region: str | None = None) -> str:
    """The ISO 3166 country code the number belongs to ("US", "CA", "GB").

    Numbers shared by a whole numbering plan (+1) resolve to the member country from the
    area code. Non-geographic numbers (satellite, international freephone) come back as
    "001", which no country allowlist contains.
    """
    number = _parse(raw, default_region)
    return phonenumbers.region_code_for_number(number) or "001"


def is_known_region(code: str) -> bool:
    """Whether the code is an ISO 3166 alpha-2 country with its own phone numbers ("US")."""
    return code in phonenumbers.SUPPORTED_REGIONS


# A model field that takes a number written any way and holds its E.164 form.
Phone = Annotated[str, AfterValidator(normalise_phone)]

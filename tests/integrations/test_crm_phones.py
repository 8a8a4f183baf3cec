"""The CRM client hands fiflow E.164 numbers only, whatever the CRM record says."""

from __future__ import annotations

import logging

import httpx
import pytest

from fiflow.domain.phones import InvalidPhoneNumber
from fiflow.integrations.crm import CrmClient

RECORDS = {
    "cust-a": {"customer_id": "cust-a", "phone": "+1 (202) 555-0107"},
    "cust-b": {"customer_id": "cust-b", "phone": "+1 555-000-0001"},  # area code 555: invalid
    "cust-c": {"customer_id": "cust-c", "phone": None, "push_device_id": "dev-c"},
}


def _crm(seen: list[httpx.Request]) -> CrmClient:
    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.path == "/crm/customers":
            phone = request.url.params["phone"]
            return httpx.Response(200, json=[RECORDS["cust-a"]] if phone == "+12025550107" else [])
        return httpx.Response(200, json=RECORDS[request.url.path.rsplit("/", 1)[1]])

    transport = httpx.MockTransport(answer)
    return CrmClient(httpx.AsyncClient(base_url="http://crm", transport=transport))


async def test_a_formatted_crm_number_comes_back_in_e164() -> None:
    customer = await _crm([]).get_customer("cust-a")
    assert customer.phone == "+12025550107"


async def test_an_invalid_crm_number_counts_as_no_sms_number(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="fiflow.crm"):
        customer = await _crm([]).get_customer("cust-b")
    assert customer.phone is None and not customer.reachable_by(customer.preferred_channel)
    assert "cust-b" in caplog.text
    assert "555" not in caplog.text.replace("cust-b", "")  # the number stays out of the log


async def test_a_customer_without_a_number_is_unchanged() -> None:
    customer = await _crm([]).get_customer("cust-c")
    assert customer.phone is None and customer.push_device_id == "dev-c"


async def test_find_by_phone_asks_for_the_e164_form() -> None:
    seen: list[httpx.Request] = []
    found = await _crm(seen).find_by_phone("+1 202.555.0107")
    assert found is not None and found.customer_id == "cust-a" and found.phone == "+12025550107"
    assert seen[0].url.params["phone"] == "+12025550107"


async def test_find_by_phone_refuses_an_invalid_number_without_asking() -> None:
    seen: list[httpx.Request] = []
    with pytest.raises(InvalidPhoneNumber):
        await _crm(seen).find_by_phone("+15550000001")
    assert seen == []

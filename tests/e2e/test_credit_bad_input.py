"""Bad credit-application input: a 4xx with a JSON code and message; nothing started or changed."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from tests.e2e.conftest import CustomerPool
from tests.e2e.stack import (
    CHANNEL_KEY,
    REVIEWER_KEY,
    REVIEWER_PERSON_KEY,
    SYSTEM_KEY,
    RunningStack,
    channel_for,
)
from tests.e2e.test_api_bad_input import assert_error
from tests.e2e.test_credit_e2e import application_body, in_state, submit


async def never_started(temporal: Client, application_id: str) -> bool:
    try:
        await temporal.get_workflow_handle(f"credit-{application_id}").describe()
    except RPCError as err:
        return err.status is RPCStatusCode.NOT_FOUND
    return False


def without_consent() -> dict[str, Any]:
    return {"credit_pull": False, "given_at": datetime.now(UTC).isoformat()}


@pytest.mark.parametrize(
    ("change", "status", "code"),
    [
        ({"consent": without_consent()}, 422, "consent_required"),
        ({"requested_amount": "-500.00"}, 422, "invalid_request"),
        ({"requested_amount": "900000000000.00"}, 422, "invalid_request"),
        ({"requested_amount": "90000.00"}, 422, "amount_out_of_range"),
        ({"product": "mortgage"}, 422, "invalid_request"),
        ({"customer_id": "cust-9999"}, 422, "unknown_customer"),
        ({"term_months": 24}, 422, "term_not_allowed"),
        ({"product": "personal_loan", "requested_amount": "9000.00"}, 422, "term_required"),
        ({"stated_monthly_income": "lots"}, 422, "invalid_request"),
        ({"application_id": "has spaces/and slashes"}, 422, "invalid_request"),
        ({"surprise": True}, 422, "invalid_request"),
    ],
)
async def test_applications_that_are_refused_start_nothing(
    stack: RunningStack,
    http: httpx.AsyncClient,
    temporal: Client,
    change: dict[str, Any],
    status: int,
    code: str,
) -> None:
    body = {**application_body("cust-0002"), **change}
    r = await http.post(f"{stack.api}/v1/credit-applications", json=body, headers=CHANNEL_KEY)
    assert_error(r, status, code)
    assert await never_started(temporal, str(body["application_id"]).replace(" ", "_"))


async def test_keys_roles_and_unknown_applications(
    stack: RunningStack, http: httpx.AsyncClient, temporal: Client
) -> None:
    url = f"{stack.api}/v1/credit-applications"
    body = application_body("cust-0002")
    assert_error(await http.post(url, json=body), 401, "unauthorized")
    assert_error(await http.post(url, json=body, headers=SYSTEM_KEY), 403, "forbidden")
    assert_error(await http.post(url, json=body, headers=REVIEWER_KEY), 403, "forbidden")
    assert await never_started(temporal, body["application_id"])

    review = {"decision": "approve"}
    assert_error(
        await http.post(f"{url}/app-unknown/review", json=review, headers=REVIEWER_PERSON_KEY),
        404,
        "application_not_found",
    )
    assert_error(
        await http.get(f"{url}/app-unknown", headers=channel_for("cust-0002")),
        404,
        "application_not_found",
    )
    bad_review = {"decision": "maybe"}
    assert_error(
        await http.post(f"{url}/app-unknown/review", json=bad_review, headers=REVIEWER_PERSON_KEY),
        422,
        "invalid_request",
    )

    reports = f"{stack.api}/v1/reports/credit-applications"
    assert_error(await http.get(reports), 401, "unauthorized")
    assert_error(await http.get(reports, headers=CHANNEL_KEY), 403, "forbidden")
    assert_error(
        await http.get(f"{reports}/app-unknown", headers=REVIEWER_KEY), 404, "report_not_found"
    )
    assert_error(
        await http.get(reports, params={"cursor": "not-a-cursor"}, headers=REVIEWER_KEY),
        400,
        "invalid_cursor",
    )
    assert_error(
        await http.get(reports, params={"from": "2026-01-01T00:00:00"}, headers=REVIEWER_KEY),
        422,
        "invalid_request",
    )
    assert_error(
        await http.get(reports, params={"decision": "perhaps"}, headers=REVIEWER_KEY),
        422,
        "invalid_request",
    )


async def test_a_review_of_a_finished_application_is_refused(
    stack: RunningStack, http: httpx.AsyncClient, pool: CustomerPool
) -> None:
    customer = pool.credit_customer("cust-0004")  # score 560: declined by the rules
    app_id = await submit(http, stack, application_body(customer["customer_id"]))
    done = await in_state(http, stack, app_id, "declined")
    assert done["status"]["decision"]["reasons"] == ["SCORE_TOO_LOW"]

    review = {"decision": "approve"}
    r = await http.post(
        f"{stack.api}/v1/credit-applications/{app_id}/review",
        json=review,
        headers=REVIEWER_PERSON_KEY,
    )
    body = assert_error(r, 409, "application_finished")
    assert "declined" in body["message"]
    after = await in_state(http, stack, app_id, "declined")
    assert after["status"]["reviews"] == []

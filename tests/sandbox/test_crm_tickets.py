"""CRM support tickets: opening, reading, moving along, the agent's hand, faults, reset."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.sandbox.helpers import assert_error, calls, view

TICKET_FIELDS = {
    "ticket_id", "customer_id", "subject", "category", "priority", "status", "created_at",
    "updated_at", "resolved_at",
}  # fmt: skip
CARD_TICKET = {
    "subject": "Card declined abroad",
    "category": "card",
    "description": "Declined twice in Lisbon on 2024-05-30.",
    "priority": "high",
}


async def open_ticket(
    sandbox: httpx.AsyncClient,
    customer_id: str = "cust-0001",
    body: dict[str, Any] | None = None,
    key: str | None = None,
) -> dict[str, Any]:
    """Open a ticket and return it, asserting it was created."""
    headers = {"Idempotency-Key": key} if key else {}
    response = await sandbox.post(
        f"/crm/customers/{customer_id}/tickets", json=body or CARD_TICKET, headers=headers
    )
    assert response.status_code == 201, response.text
    return response.json()


async def set_status(
    sandbox: httpx.AsyncClient, ticket_id: str, status: str, note: str | None = None
) -> dict[str, Any]:
    """Move a ticket through the API and return it, asserting the call succeeded."""
    body = {"status": status, **({"note": note} if note else {})}
    response = await sandbox.post(f"/crm/tickets/{ticket_id}/status", json=body)
    assert response.status_code == 200, response.text
    return response.json()


async def test_open_read_and_list(sandbox: httpx.AsyncClient) -> None:
    ticket = await open_ticket(sandbox, key="dispute-9/ticket")
    assert set(ticket) == TICKET_FIELDS
    assert ticket["ticket_id"].startswith("tkt-")
    assert (ticket["customer_id"], ticket["subject"], ticket["category"]) == (
        "cust-0001",
        "Card declined abroad",
        "card",
    )
    assert (ticket["priority"], ticket["status"], ticket["resolved_at"]) == ("high", "open", None)
    assert ticket["created_at"] == ticket["updated_at"] and ticket["created_at"].endswith("Z")

    fetched = await sandbox.get(f"/crm/tickets/{ticket['ticket_id']}")
    assert fetched.status_code == 200 and fetched.json() == ticket
    listed = await sandbox.get("/crm/customers/cust-0001/tickets")
    assert listed.status_code == 200 and listed.json() == [ticket]
    # Another customer's tickets are theirs alone.
    other = await open_ticket(sandbox, "cust-0002", {"subject": "App login", "category": "tech"})
    assert other["priority"] == "normal"
    assert (await sandbox.get("/crm/customers/cust-0001/tickets")).json() == [ticket]
    assert (await sandbox.get("/crm/customers/cust-0003/tickets")).json() == []

    # The inspection view adds what the API does not show.
    [inspected] = await view(sandbox, "/__sandbox/crm/tickets", customer_id="cust-0001")
    assert {k: inspected[k] for k in TICKET_FIELDS} == ticket
    assert inspected["description"] == CARD_TICKET["description"]
    assert inspected["idempotency_key"] == "dispute-9/ticket" and inspected["history"] == []
    everyone = await view(sandbox, "/__sandbox/crm/tickets")
    assert [t["ticket_id"] for t in everyone] == [ticket["ticket_id"], other["ticket_id"]]
    assert everyone[1]["description"] is None and everyone[1]["idempotency_key"] is None

    recorded = await calls(sandbox, system="crm")
    assert [(c["method"], c["status_code"], c["idempotency_key"]) for c in recorded] == [
        ("POST", 201, "dispute-9/ticket"),
        ("GET", 200, None),
        ("GET", 200, None),
        ("POST", 201, None),
        ("GET", 200, None),
        ("GET", 200, None),
    ]
    assert recorded[0]["body"] == CARD_TICKET
    assert recorded[0]["path"] == "/crm/customers/cust-0001/tickets"
    assert recorded[1]["path"] == f"/crm/tickets/{ticket['ticket_id']}"


async def test_opening_is_idempotent(sandbox: httpx.AsyncClient) -> None:
    key = "wf-42/open-ticket"
    first = await sandbox.post(
        "/crm/customers/cust-0004/tickets", json=CARD_TICKET, headers={"Idempotency-Key": key}
    )
    second = await sandbox.post(
        "/crm/customers/cust-0004/tickets", json=CARD_TICKET, headers={"Idempotency-Key": key}
    )
    assert first.status_code == second.status_code == 201
    assert second.json() == first.json() and second.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    stored = await view(sandbox, "/__sandbox/crm/tickets")
    assert [t["ticket_id"] for t in stored] == [first.json()["ticket_id"]]
    recorded = await calls(sandbox, system="crm", idempotency_key=key)
    assert [c["replayed"] for c in recorded] == [False, True]

    # Another key is another ticket.
    third = await open_ticket(sandbox, "cust-0004", key=key + "-other")
    assert third["ticket_id"] != first.json()["ticket_id"]
    assert len(await view(sandbox, "/__sandbox/crm/tickets")) == 2


async def test_status_transitions_and_resolved_at(sandbox: httpx.AsyncClient) -> None:
    ticket = await open_ticket(sandbox)
    ticket_id = ticket["ticket_id"]

    pending = await set_status(sandbox, ticket_id, "pending", "waiting for the customer")
    assert pending["status"] == "pending" and pending["resolved_at"] is None
    assert pending["updated_at"] > ticket["updated_at"]
    assert pending["created_at"] == ticket["created_at"]

    resolved = await set_status(sandbox, ticket_id, "resolved", "card reissued")
    assert resolved["status"] == "resolved"
    assert resolved["resolved_at"] == resolved["updated_at"] > pending["updated_at"]

    # Level-triggered: asking for the status it has succeeds and changes nothing.
    assert await set_status(sandbox, ticket_id, "resolved") == resolved

    # Closing a resolved ticket keeps when it was resolved.
    closed = await set_status(sandbox, ticket_id, "closed")
    assert closed["status"] == "closed" and closed["resolved_at"] == resolved["resolved_at"]
    assert closed["updated_at"] > resolved["updated_at"]

    # Reopening clears it; resolving again stamps a new time.
    reopened = await set_status(sandbox, ticket_id, "open", "declined again")
    assert reopened["status"] == "open" and reopened["resolved_at"] is None
    closed_again = await set_status(sandbox, ticket_id, "closed")
    assert closed_again["resolved_at"] == closed_again["updated_at"] > reopened["updated_at"]

    assert (await sandbox.get(f"/crm/tickets/{ticket_id}")).json() == closed_again
    [inspected] = await view(sandbox, "/__sandbox/crm/tickets")
    assert [(h["status"], h["note"], h["by"]) for h in inspected["history"]] == [
        ("pending", "waiting for the customer", "api"),
        ("resolved", "card reissued", "api"),
        ("closed", None, "api"),
        ("open", "declined again", "api"),
        ("closed", None, "api"),
    ]
    assert inspected["history"][-1]["at"] == closed_again["updated_at"]


async def test_status_update_is_idempotent(sandbox: httpx.AsyncClient) -> None:
    ticket_id = (await open_ticket(sandbox))["ticket_id"]
    path = f"/crm/tickets/{ticket_id}/status"
    headers = {"Idempotency-Key": "t/resolve"}
    first = await sandbox.post(path, json={"status": "resolved"}, headers=headers)
    await set_status(sandbox, ticket_id, "open")
    # The replay answers the stored response and does not resolve the ticket again.
    replay = await sandbox.post(path, json={"status": "resolved"}, headers=headers)
    assert replay.status_code == 200 and replay.json() == first.json()
    assert replay.headers["idempotent-replayed"] == "true"
    assert (await sandbox.get(f"/crm/tickets/{ticket_id}")).json()["status"] == "open"


async def test_list_filters_by_status(sandbox: httpx.AsyncClient) -> None:
    first = await open_ticket(sandbox)
    second = await open_ticket(sandbox, body={"subject": "Statement copy", "category": "billing"})
    await set_status(sandbox, first["ticket_id"], "pending")
    path = "/crm/customers/cust-0001/tickets"

    async def ids(**params: str) -> list[str]:
        response = await sandbox.get(path, params=params)
        assert response.status_code == 200, response.text
        return [t["ticket_id"] for t in response.json()]

    assert await ids() == [first["ticket_id"], second["ticket_id"]]
    assert await ids(status="pending") == [first["ticket_id"]]
    assert await ids(status="open") == [second["ticket_id"]]
    assert await ids(status="closed") == []
    assert_error(await sandbox.get(path, params={"status": "done"}), 422, "invalid_request")
    pending = await view(sandbox, "/__sandbox/crm/tickets", status="pending")
    assert [t["ticket_id"] for t in pending] == [first["ticket_id"]]


async def test_unknown_customers_and_tickets(sandbox: httpx.AsyncClient) -> None:
    assert_error(
        await sandbox.post("/crm/customers/cust-9999/tickets", json=CARD_TICKET),
        404,
        "customer_not_found",
    )
    assert_error(await sandbox.get("/crm/customers/cust-9999/tickets"), 404, "customer_not_found")
    assert_error(await sandbox.get("/crm/tickets/tkt-nope"), 404, "ticket_not_found")
    assert_error(
        await sandbox.post("/crm/tickets/tkt-nope/status", json={"status": "closed"}),
        404,
        "ticket_not_found",
    )
    assert_error(
        await sandbox.post("/__sandbox/crm/tickets/tkt-nope/resolve"), 404, "ticket_not_found"
    )
    assert await view(sandbox, "/__sandbox/crm/tickets") == []
    recorded = await calls(sandbox, system="crm")
    assert [(c["method"], c["status_code"]) for c in recorded] == [
        ("POST", 404),
        ("GET", 404),
        ("GET", 404),
        ("POST", 404),
    ]


@pytest.mark.parametrize(
    "body",
    [
        {**CARD_TICKET, "subject": ""},
        {**CARD_TICKET, "subject": "x" * 201},
        {**CARD_TICKET, "category": ""},
        {**CARD_TICKET, "category": "c" * 65},
        {**CARD_TICKET, "description": "d" * 4001},
        {**CARD_TICKET, "priority": "urgent"},
        {"category": "card"},
    ],
    ids=["empty-subject", "long-subject", "empty-category", "long-category", "long-description",
         "bad-priority", "no-subject"],
)  # fmt: skip
async def test_invalid_ticket_requests(sandbox: httpx.AsyncClient, body: dict[str, Any]) -> None:
    response = await sandbox.post("/crm/customers/cust-0001/tickets", json=body)
    assert_error(response, 422, "invalid_request")
    assert await view(sandbox, "/__sandbox/crm/tickets") == []
    [call] = await calls(sandbox, system="crm")
    assert call["status_code"] == 422 and call["body"] == body


async def test_invalid_status_requests(sandbox: httpx.AsyncClient) -> None:
    ticket = await open_ticket(sandbox)
    path = f"/crm/tickets/{ticket['ticket_id']}/status"
    for bad in ({"status": "reopened"}, {}, {"status": "closed", "note": "n" * 4001}):
        assert_error(await sandbox.post(path, json=bad), 422, "invalid_request")
    assert (await sandbox.get(f"/crm/tickets/{ticket['ticket_id']}")).json() == ticket


async def test_agent_resolves_without_a_call(sandbox: httpx.AsyncClient) -> None:
    ticket = await open_ticket(sandbox)
    before = await calls(sandbox)
    # Even a CRM that fails every call does not stop the agent working in its UI.
    await sandbox.post("/__sandbox/faults", json={"system": "crm", "status_code": 503})
    response = await sandbox.post(f"/__sandbox/crm/tickets/{ticket['ticket_id']}/resolve")
    assert response.status_code == 200, response.text
    resolved = response.json()
    assert resolved["status"] == "resolved" and resolved["resolved_at"] is not None
    assert resolved["resolved_at"] == resolved["updated_at"] > ticket["updated_at"]
    assert [(h["status"], h["by"]) for h in resolved["history"]] == [("resolved", "agent")]
    assert await calls(sandbox) == before

    await sandbox.delete("/__sandbox/faults")
    fetched = (await sandbox.get(f"/crm/tickets/{ticket['ticket_id']}")).json()
    assert fetched == {k: resolved[k] for k in TICKET_FIELDS}
    # Resolving a resolved ticket again changes nothing.
    again = await sandbox.post(f"/__sandbox/crm/tickets/{ticket['ticket_id']}/resolve")
    assert again.json() == resolved


async def test_crm_faults_affect_tickets(sandbox: httpx.AsyncClient) -> None:
    fault = {"system": "crm", "status_code": 503, "remaining": 1}
    await sandbox.post("/__sandbox/faults", json=fault)
    headers = {"Idempotency-Key": "wf-7/ticket"}
    path = "/crm/customers/cust-0002/tickets"
    failed = await sandbox.post(path, json=CARD_TICKET, headers=headers)
    assert_error(failed, 503, "injected_fault")
    assert await view(sandbox, "/__sandbox/crm/tickets") == []
    # The retry with the same key is a first attempt: the failure was not stored.
    ok = await sandbox.post(path, json=CARD_TICKET, headers=headers)
    assert ok.status_code == 201 and "idempotent-replayed" not in ok.headers
    ticket_id = ok.json()["ticket_id"]

    for request in (
        lambda: sandbox.get(f"/crm/tickets/{ticket_id}"),
        lambda: sandbox.get(path),
        lambda: sandbox.post(f"/crm/tickets/{ticket_id}/status", json={"status": "closed"}),
    ):
        await sandbox.post("/__sandbox/faults", json=fault)
        assert_error(await request(), 503, "injected_fault")
        assert (await request()).status_code == 200
    assert (await sandbox.get(f"/crm/tickets/{ticket_id}")).json()["status"] == "closed"

    recorded = await calls(sandbox, system="crm")
    assert [(c["fault"], c["status_code"]) for c in recorded] == [
        (True, 503),
        (False, 201),
        (True, 503),
        (False, 200),
        (True, 503),
        (False, 200),
        (True, 503),
        (False, 200),
        (False, 200),
    ]


async def test_reset_forgets_tickets(sandbox: httpx.AsyncClient) -> None:
    ticket = await open_ticket(sandbox, key="k-reset")
    assert len(await view(sandbox, "/__sandbox/crm/tickets")) == 1
    assert (await sandbox.post("/__sandbox/reset")).status_code == 200
    assert await view(sandbox, "/__sandbox/crm/tickets") == []
    assert (await sandbox.get("/crm/customers/cust-0001/tickets")).json() == []
    assert_error(await sandbox.get(f"/crm/tickets/{ticket['ticket_id']}"), 404, "ticket_not_found")
    # The stored response went too: the same key opens a new ticket.
    again = await open_ticket(sandbox, key="k-reset")
    assert again["ticket_id"] != ticket["ticket_id"]

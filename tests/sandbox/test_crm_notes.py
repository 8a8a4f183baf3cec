"""CRM notes are kept, listed for tests, and forgotten on reset."""

from __future__ import annotations

import httpx

from tests.sandbox.helpers import assert_error, view

NOTE_FIELDS = {"note_id", "customer_id", "text", "category", "created_at", "idempotency_key"}


async def test_notes_are_listed(sandbox: httpx.AsyncClient) -> None:
    first = await sandbox.post(
        "/crm/customers/cust-0001/notes",
        json={"text": "Customer confirmed the purchase", "category": "fraud"},
        headers={"Idempotency-Key": "alert-3/note"},
    )
    assert first.status_code == 201
    assert set(first.json()) == {"note_id", "customer_id"}
    second = await sandbox.post("/crm/customers/cust-0002/notes", json={"text": "Called back"})
    assert second.status_code == 201

    notes = await view(sandbox, "/__sandbox/crm/notes")
    assert all(set(n) == NOTE_FIELDS for n in notes)
    assert [(n["note_id"], n["customer_id"], n["text"], n["category"]) for n in notes] == [
        (first.json()["note_id"], "cust-0001", "Customer confirmed the purchase", "fraud"),
        (second.json()["note_id"], "cust-0002", "Called back", None),
    ]
    assert [n["idempotency_key"] for n in notes] == ["alert-3/note", None]
    assert all(n["created_at"].endswith("Z") for n in notes)
    assert notes[0]["created_at"] < notes[1]["created_at"]

    mine = await view(sandbox, "/__sandbox/crm/notes", customer_id="cust-0002")
    assert mine == [notes[1]]
    assert await view(sandbox, "/__sandbox/crm/notes", customer_id="cust-0003") == []
    # Inspection is not a call.
    calls = await view(sandbox, "/__sandbox/calls", system="crm")
    assert [c["method"] for c in calls] == ["POST", "POST"]


async def test_replays_and_failures_keep_no_note(sandbox: httpx.AsyncClient) -> None:
    body = {"text": "Left a voicemail"}
    headers = {"Idempotency-Key": "cb-1/note"}
    first = await sandbox.post("/crm/customers/cust-0004/notes", json=body, headers=headers)
    replay = await sandbox.post("/crm/customers/cust-0004/notes", json=body, headers=headers)
    assert replay.headers["idempotent-replayed"] == "true" and replay.json() == first.json()
    assert_error(
        await sandbox.post("/crm/customers/cust-9999/notes", json=body), 404, "customer_not_found"
    )
    assert_error(
        await sandbox.post("/crm/customers/cust-0004/notes", json={"text": ""}),
        422,
        "invalid_request",
    )
    await sandbox.post("/__sandbox/faults", json={"system": "crm", "remaining": 1})
    assert_error(
        await sandbox.post("/crm/customers/cust-0004/notes", json=body), 500, "injected_fault"
    )
    notes = await view(sandbox, "/__sandbox/crm/notes")
    assert [n["note_id"] for n in notes] == [first.json()["note_id"]]


async def test_reset_forgets_notes(sandbox: httpx.AsyncClient) -> None:
    await sandbox.post("/crm/customers/cust-0001/notes", json={"text": "x"})
    assert len(await view(sandbox, "/__sandbox/crm/notes")) == 1
    assert (await sandbox.post("/__sandbox/reset")).status_code == 200
    assert await view(sandbox, "/__sandbox/crm/notes") == []

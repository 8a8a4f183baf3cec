"""The notes the CRM keeps on customers' records."""

from __future__ import annotations

from typing import Any

from fiflow.sandbox.ids import new_id
from fiflow.sandbox.timeutil import iso_now


class NoteBook:
    """Notes in the order they were added; replays and failures never reach here."""

    def __init__(self) -> None:
        self.clear()

    def clear(self) -> None:
        """Forget every note."""
        self._notes: list[dict[str, Any]] = []

    def add(
        self, customer_id: str, text: str, category: str | None, idempotency_key: str | None
    ) -> dict[str, Any]:
        """Keep a new note and return it."""
        note = {
            "note_id": new_id("note"),
            "customer_id": customer_id,
            "text": text,
            "category": category,
            "created_at": iso_now(),
            "idempotency_key": idempotency_key,
        }
        self._notes.append(note)
        return dict(note)

    def for_customer(self, customer_id: str | None = None) -> list[dict[str, Any]]:
        """Notes in order, optionally of one customer."""
        return [
            dict(n) for n in self._notes if customer_id is None or n["customer_id"] == customer_id
        ]

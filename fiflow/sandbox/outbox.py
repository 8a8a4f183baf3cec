"""Sent SMS and push messages, indexed by recipient."""

from __future__ import annotations

from collections import defaultdict
from typing import Any


class Outbox:
    """Messages in send order, with O(1) access to one recipient's messages."""

    def __init__(self, recipient_field: str) -> None:
        self._field = recipient_field
        self.clear()

    def clear(self) -> None:
        """Forget every message."""
        self._all: list[dict[str, Any]] = []
        self._by_recipient: dict[str, list[dict[str, Any]]] = defaultdict(list)

    def add(self, message: dict[str, Any]) -> None:
        """Append a message."""
        self._all.append(message)
        self._by_recipient[message[self._field]].append(message)

    def find(self, recipient: str | None = None) -> list[dict[str, Any]]:
        """All messages, or one recipient's, in send order."""
        if recipient is None:
            return list(self._all)
        return list(self._by_recipient.get(recipient, []))

"""Sent SMS and push messages, indexed by recipient."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from fiflow.sandbox.waiting import KeyedWakeups

ALL = "*"  # the wake-up key of readers that watch every recipient


class Outbox:
    """Messages in send order, with O(1) access to one recipient's messages."""

    def __init__(self, recipient_field: str) -> None:
        self._field = recipient_field
        self.wakeups = KeyedWakeups()
        self.clear()

    def clear(self) -> None:
        """Forget every message."""
        self._all: list[dict[str, Any]] = []
        self._by_recipient: dict[str, list[dict[str, Any]]] = defaultdict(list)

    def add(self, message: dict[str, Any]) -> None:
        """Append a message."""
        self._all.append(message)
        self._by_recipient[message[self._field]].append(message)
        self.wakeups.notify([message[self._field], ALL])

    def find(self, recipient: str | None = None) -> list[dict[str, Any]]:
        """All messages, or one recipient's, in send order."""
        if recipient is None:
            return list(self._all)
        return list(self._by_recipient.get(recipient, []))

    @staticmethod
    def wake_key(recipient: str | None) -> str:
        """The key a reader of `find(recipient)` waits on."""
        return ALL if recipient is None else recipient

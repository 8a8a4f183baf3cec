"""Recorded calls, stored idempotent responses and injected faults, all in memory."""

from __future__ import annotations

import random
from collections import defaultdict
from typing import Any, Literal, get_args

from pydantic import BaseModel, Field

from fiflow.sandbox.timeutil import iso_now
from fiflow.sandbox.waiting import KeyedWakeups

System = Literal[
    "crm", "fraud", "card", "contact_center", "sms", "push", "bureau", "core_banking", "billing"
]
SYSTEMS: tuple[str, ...] = get_args(System)


class CallLog:
    """Every call the systems received, indexed so filtered reads need no full scan."""

    def __init__(self) -> None:
        # Never reset: IDs keep increasing across resets so stale reads are obvious.
        self._next_id = 1
        self.wakeups = KeyedWakeups()
        self.clear()

    def clear(self) -> None:
        """Forget every recorded call."""
        self._all: list[dict[str, Any]] = []
        self._by_system: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self._by_key: dict[str, list[dict[str, Any]]] = defaultdict(list)

    def record(
        self,
        *,
        system: str,
        method: str,
        path: str,
        query: dict[str, str] | None,
        idempotency_key: str | None,
        body: Any,
        status_code: int,
        replayed: bool = False,
        fault: bool = False,
        applied: bool = False,
    ) -> dict[str, Any]:
        """Append one call and return its record.

        `applied` is true when this call carried out a write: its action ran and succeeded,
        whatever was answered (an `after_write` fault loses the answer, not the effect). It
        is false for a refused or failed write, an idempotent replay (the effect belongs to
        the first call), a read, and the SMS webhook deliveries the sandbox makes itself.
        Counting `applied` calls per business step is therefore exact; `fault` alone is
        not, since a write whose answer was lost and one that was refused both carry it.
        """
        call = {
            "id": self._next_id,
            "system": system,
            "method": method,
            "path": path,
            "query": query or None,
            "idempotency_key": idempotency_key,
            "body": body,
            "status_code": status_code,
            "replayed": replayed,
            "fault": fault,
            "applied": applied,
            "at": iso_now(),
        }
        self._next_id += 1
        self._all.append(call)
        self._by_system[system].append(call)
        if idempotency_key is not None:
            self._by_key[idempotency_key].append(call)
        # Every filter this call matches: all calls, its system, its key, both.
        self.wakeups.notify(
            {self.wake_key(s, k) for s in (None, system) for k in (None, idempotency_key)}
        )
        return call

    def find(
        self, system: str | None = None, idempotency_key: str | None = None
    ) -> list[dict[str, Any]]:
        """Calls in arrival order, optionally for one system and/or one idempotency key."""
        if idempotency_key is not None:
            calls = self._by_key.get(idempotency_key, [])
            return [c for c in calls if system is None or c["system"] == system]
        if system is not None:
            return list(self._by_system.get(system, []))
        return list(self._all)

    @staticmethod
    def wake_key(system: str | None, idempotency_key: str | None) -> str:
        """The key a reader of `find(system, idempotency_key)` waits on."""
        return f"{system or '*'}|{idempotency_key or '*'}"


class IdempotencyStore:
    """The first successful response per (system, Idempotency-Key)."""

    def __init__(self) -> None:
        self._responses: dict[tuple[str, str], tuple[int, Any]] = {}

    def clear(self) -> None:
        """Forget every stored response."""
        self._responses.clear()

    def get(self, system: str, key: str) -> tuple[int, Any] | None:
        """The stored (status, body) for that key, if any."""
        return self._responses.get((system, key))

    def put(self, system: str, key: str, status_code: int, body: Any) -> None:
        """Store a response unless one is already stored for that key."""
        self._responses.setdefault((system, key), (status_code, body))


class Fault(BaseModel):
    """Latency and/or errors injected into one system's calls."""

    system: System
    error_rate: float = Field(default=1.0, ge=0.0, le=1.0)
    status_code: int = Field(default=500, ge=400, le=599)
    latency_ms: int = Field(default=0, ge=0, le=120_000)
    remaining: int | None = Field(default=None, ge=1)
    # Real providers quote the request in their error messages (Twilio: "The 'To' number
    # +1... is not a valid phone number"): with echo, the injected error does the same, so
    # tests can check that such texts never travel further than the client.
    echo: bool = False
    # The call takes effect (and a write's answer is kept for its Idempotency-Key), then the
    # error is answered: a gateway timing out after the system committed. The caller cannot
    # tell that from a call that did nothing.
    after_write: bool = False


class FaultBook:
    """The active fault per system; seeded so a given error_rate fails the same calls."""

    def __init__(self, seed: int) -> None:
        self._seed = seed
        self.clear()

    def clear(self, system: str | None = None) -> None:
        """Clear one system's fault, or all of them (which also reseeds the sampling)."""
        if system is None:
            self._faults: dict[str, Fault] = {}
            self._rng = random.Random(self._seed)
        else:
            self._faults.pop(system, None)

    def set(self, fault: Fault) -> Fault:
        """Install a fault, replacing that system's previous one."""
        self._faults[fault.system] = fault
        return fault

    def all(self) -> list[Fault]:
        """Active faults."""
        return list(self._faults.values())

    def latency_seconds(self, system: str) -> float:
        """The delay to apply to every call of that system."""
        fault = self._faults.get(system)
        return fault.latency_ms / 1000 if fault else 0.0

    def trip(self, system: str) -> Fault | None:
        """The fault to answer this call with, or None; counts down `remaining`."""
        fault = self._faults.get(system)
        if fault is None or fault.error_rate <= 0 or self._rng.random() >= fault.error_rate:
            return None
        if fault.remaining is not None:
            fault.remaining -= 1
            if fault.remaining <= 0:
                del self._faults[system]
        return fault

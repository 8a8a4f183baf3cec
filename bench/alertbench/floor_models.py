"""The floor flow's pydantic models (imported passed through, like fiflow's domain models)."""

from __future__ import annotations

from pydantic import BaseModel


class FloorInput(BaseModel):
    """Starts one floor flow; `notify` is where its activity reports that it ran."""

    n: int
    notify: str  # host:port of the benchmark's UDP listener


class FloorStep(BaseModel):
    """The floor activity's argument and result."""

    n: int
    notify: str


class FloorGo(BaseModel):
    """The floor flow's one signal."""

    n: int


class FloorOutcome(BaseModel):
    """What a floor flow returns."""

    n: int

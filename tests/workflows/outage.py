"""A database outage for workflow tests: the worker's real engine refuses every statement."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError


@contextmanager
def database_outage(engine: Engine | None) -> Iterator[list[str]]:
    """Until the block ends, every statement on `engine` fails as an unreachable server would.

    The real activities and stores run unchanged over it, so their retry policies (not a
    mock's) decide what happens. Yields the statements refused, so a test can show the
    outage was really hit.
    """
    assert engine is not None
    refused: list[str] = []

    def refuse(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        refused.append(statement.split(None, 1)[0])
        raise OperationalError(statement, None, Exception("database unavailable (test outage)"))

    sa.event.listen(engine, "before_cursor_execute", refuse)
    try:
        yield refused
    finally:
        sa.event.remove(engine, "before_cursor_execute", refuse)

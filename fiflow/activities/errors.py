"""How back-office failures look to Temporal: 4xx are final, the rest retry."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import ParamSpec, TypeVar

from temporalio.exceptions import ApplicationError

from fiflow.integrations.http import BusinessError

P = ParamSpec("P")
R = TypeVar("R")


def business_errors_are_final(fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    """Turn a BusinessError into a named non-retryable ApplicationError (type `system.code`)."""

    @functools.wraps(fn)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return await fn(*args, **kwargs)
        except BusinessError as exc:
            raise ApplicationError(
                str(exc), type=f"{exc.system}.{exc.code}", non_retryable=True
            ) from exc

    return wrapper

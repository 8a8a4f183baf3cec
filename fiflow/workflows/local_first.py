"""Local activity first, regular activity when the local budget runs out.

A local activity costs one marker in the workflow task that ran it; a regular one costs
three events and a workflow task of its own. The local attempt gets a short budget
(options.BACKOFFICE_LOCAL); a call still failing then goes out again as a regular activity
with the full BACKOFFICE budget, so long retries wait on the server's timers and survive a
worker's death like any activity. Both attempts carry the caller's argument unchanged, so a
write keeps its idempotency key and is applied once whichever attempt reached the system.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError, FailureError, RetryState

with workflow.unsafe.imports_passed_through():
    from fiflow.workflows.options import BACKOFFICE, BACKOFFICE_LOCAL

A = TypeVar("A")
R = TypeVar("R")


def is_final(err: BaseException) -> bool:
    """Whether a failure is the system's answer (a refused write), not a budget running out."""
    cause: BaseException | None = err
    while cause is not None:
        if (
            isinstance(cause, ActivityError)
            and cause.retry_state is RetryState.NON_RETRYABLE_FAILURE
        ):
            return True
        if isinstance(cause, ApplicationError) and cause.non_retryable:
            return True
        cause = cause.cause if isinstance(cause, FailureError) else None
    return False


async def local_first(method: Callable[[Any, A], Awaitable[R]], arg: A) -> R:
    """Run the activity method locally; past the local budget, as a regular activity.

    A final (non-retryable) failure is raised as it came: retrying it elsewhere would not help.
    """
    try:
        return await workflow.execute_local_activity_method(method, arg, **BACKOFFICE_LOCAL)
    except FailureError as err:
        if is_final(err):
            raise
    return await workflow.execute_activity_method(method, arg, **BACKOFFICE)

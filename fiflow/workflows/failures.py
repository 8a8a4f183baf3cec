"""Describing a failed activity or child workflow in one line (no payloads, no PII)."""

from __future__ import annotations

from temporalio.exceptions import ApplicationError, FailureError, TimeoutError


def cause_of(err: BaseException) -> str:
    """The innermost cause's type and message, for records and ops."""
    cause: BaseException = err
    while isinstance(cause, FailureError) and cause.cause is not None:
        cause = cause.cause
    if isinstance(cause, ApplicationError) and cause.type:
        return f"{cause.type}: {cause.message}"
    if isinstance(cause, TimeoutError):
        return f"timed out ({cause.type.name.lower() if cause.type else 'unknown'})"
    return f"{type(cause).__name__}: {cause}"

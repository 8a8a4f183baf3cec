"""The API's reads from CRM before it accepts work, with one way of answering CRM trouble."""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from typing import TypeVar

from fiflow.integrations.http import BusinessError, TransientError
from fiflow.starters.api.errors import ApiError

log = logging.getLogger("fiflow.api")
T = TypeVar("T")


async def crm_read(call: Awaitable[T], *, missing: ApiError, strict: bool, what: str) -> T | None:
    """The CRM's answer; `missing` for a 404.

    Other trouble: with `strict` the request is refused (502 when the CRM refuses, 503 when
    it is down); without it the work is accepted unchecked (None), because the workflow
    reads CRM itself and retries.
    """
    try:
        return await call
    except BusinessError as exc:
        if exc.status == 404:
            raise missing from None
        if strict:
            raise ApiError(502, "crm_error", f"the CRM refused the {what}") from None
        log.warning("CRM refused the %s; accepting unchecked: %s", what, exc.code)
    except TransientError:
        if strict:
            raise ApiError(503, "crm_unavailable", f"cannot do the {what} now; retry") from None
        log.warning("CRM unavailable for the %s; accepting unchecked", what)
    return None


def unknown_customer(customer_id: str) -> ApiError:
    """The answer for a customer the CRM does not know."""
    return ApiError(422, "unknown_customer", f"customer {customer_id} is not known to the CRM")

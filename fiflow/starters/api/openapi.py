"""What `/openapi.json` promises: the error body, the statuses each operation can answer,
readable operation ids and the credentials.

Routers and operations declare their statuses with `errors(...)` from the sets below, so the
spec lists every 4xx and 5xx an operation can answer, each with the one error body.
`tests/starters/api/test_openapi_contract.py` checks the spec; the live contract test
(`tests/e2e/test_api_contract_e2e.py`) checks that the running API keeps it.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field


class ErrorBody(BaseModel):
    """Every 4xx and 5xx answer: a stable `code`, a human `message`, sometimes `details`."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "code": "invalid_request",
                    "message": "invalid or missing fields: customer_id",
                    "details": [{"field": "customer_id", "problem": "Field required"}],
                },
                {"code": "alert_not_found", "message": "no alert al-7f3a"},
            ]
        }
    )

    code: str = Field(
        description="Stable machine-readable error code; match on this, not on the message.",
        examples=["invalid_request", "unauthorized", "rate_limited"],
    )
    message: str = Field(
        description="What went wrong, for a person; never quotes submitted personal data.",
        examples=["a valid X-API-Key header is required"],
    )
    details: list[dict[str, Any]] | None = Field(
        default=None,
        description=(
            "Per-problem details, when there are several: `{field, problem}` for "
            "`invalid_request`, `{code, problem}` for credit-rule refusals. Absent otherwise."
        ),
    )


DESCRIPTIONS: dict[int, str] = {
    400: "The body is not readable: malformed JSON (`malformed_json`), an unreadable body "
    "(`bad_request`) or an invalid paging cursor (`invalid_cursor`).",
    401: "No credential, or an unknown one (`unauthorized`).",
    403: "The credential may not do this: wrong role (`forbidden`), a shared key where a "
    "person must act (`person_required`), a channel without or with an invalid customer "
    "session (`customer_session_required`, `invalid_customer_session`), or a refused proof "
    "(`invalid_signature`, `invalid_push_token`, `not_pushed_to_device`, ...).",
    404: "No such object, or another customer's (`*_not_found`, `unknown_rule_set`, "
    "`no_pending_activation`).",
    409: "The object does not take this now (`wrong_state`, `*_finished`, `alert_closed`, "
    "`application_id_conflict`, `version_exists`).",
    412: "`If-Match` names a version that is no longer the stored one (`version_conflict`): "
    "read again, then write over the version read.",
    413: "The body is larger than `FIFLOW_API_MAX_BODY_BYTES` (`body_too_large`).",
    422: "Invalid or missing fields (`invalid_request`, with one `{field, problem}` per "
    "problem in `details`), or input the business rules refuse (`unknown_customer`, "
    "`unknown_alert_type`, `amount_too_high`, ...).",
    428: "A write over an existing object needs `If-Match` with the version read "
    "(`precondition_required`).",
    429: "Too many requests for this credential (`rate_limited`); retry after `Retry-After`.",
    500: "An unexpected error; nothing was changed (`internal_error`).",
    502: "A system fiflow depends on refused the call (`temporal_error`, `crm_error`).",
    503: "A system fiflow depends on is unavailable; retry later (`temporal_unavailable`, "
    "`database_unavailable`, `crm_unavailable`, `rules_unavailable`).",
}

# The sets the routers combine. Every keyed operation can be refused for its credential and
# rate-limited; every operation can fail unexpectedly or find a dependency down.
SERVER = (500, 503)
KEYED = (401, 403, 429, *SERVER)
# A JSON body: malformed (400), too large (413), invalid (422).
JSON_BODY = (400, 413, 422)
# Path or query parameters with a pattern or range.
PARAMS = (422,)
# Operations that call Temporal (or a strict CRM read): a refused call is 502.
UPSTREAM = (502,)


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` for these statuses, each answering the ErrorBody."""
    out: dict[int | str, dict[str, Any]] = {}
    for status in sorted(set(statuses)):
        response: dict[str, Any] = {"model": ErrorBody, "description": DESCRIPTIONS[status]}
        if status == 429:
            response["headers"] = {
                "Retry-After": {
                    "description": "Seconds until the next request from this credential fits.",
                    "schema": {"type": "integer", "minimum": 1},
                }
            }
        out[status] = response
    return out


def operation_id(route: APIRoute) -> str:
    """A readable id for a route without an explicit `operation_id`: `<tag>_<function>`."""
    tag = str(route.tags[0]) if route.tags else "api"
    return re.sub(r"[^a-z0-9]+", "_", f"{tag}_{route.name}".lower()).strip("_")


# Who may call: a key alone, a channel key with its customer's session, or a staff token.
SECURITY: list[dict[str, list[str]]] = [
    {"ApiKey": []},
    {"ApiKey": [], "CustomerSession": []},
    {"StaffBearer": []},
]


def install(app: FastAPI) -> None:
    """Serve the spec with truthful security requirements.

    FastAPI lists every security dependency as an alternative of its own, which would claim
    a customer session alone admits a caller; it only scopes a channel key.
    """

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            spec = get_openapi(
                title=app.title,
                version=app.version,
                summary=app.summary,
                description=app.description,
                routes=app.routes,
                tags=app.openapi_tags,
            )
            for operations in spec.get("paths", {}).values():
                for operation in operations.values():
                    if operation.get("security"):
                        operation["security"] = SECURITY
            app.openapi_schema = spec
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]

"""`/v1/customers/{customer_id}/alert-preferences`: what a customer wants to be alerted about.

Read and written by channel apps for the signed-in customer (a channel key with that
customer's session). The document is versioned: GET answers `ETag: "<version>"`, and a PUT
over a stored document must send it back in `If-Match` (428 without, 412 when someone wrote
in between). A customer with nothing stored reads the FI's defaults, version 0.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Depends, Header, Path, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import BaseModel, Field

from fiflow.domain.alerts import SAFE_ID
from fiflow.domain.customers import Customer
from fiflow.domain.feeds.preferences import (
    AlertPreferences,
    PreferenceEntry,
    StoredPreferences,
    effective,
)
from fiflow.domain.rules import RuleSetError
from fiflow.integrations.preferences_store import PreferenceStore, PreferenceVersionConflict
from fiflow.starters.api.auth import Identity, customer_scope, ensure_owner, require
from fiflow.starters.api.crm_reads import crm_read
from fiflow.starters.api.errors import ApiError
from fiflow.starters.api.openapi import JSON_BODY, KEYED, PARAMS, UPSTREAM, errors
from fiflow.starters.api.state import ApiState, api_state

log = logging.getLogger("fiflow.api")

# Which refusal a body problem is, by where it is: the channel app shows each differently.
_KIND_ERRORS = {"union_tag_invalid", "union_tag_not_found"}
_FIELD_CODES = (("mccs", "invalid_mcc"), ("amount", "invalid_amount"), ("cards", "invalid_card"))
ETAG_HEADER = {
    "ETag": {
        "description": 'The document\'s version, quoted (`"3"`); send it back in `If-Match`.',
        "schema": {"type": "string"},
    }
}


def _problem_code(error: dict[str, Any]) -> str:
    if error.get("type") in _KIND_ERRORS:
        return "unknown_preference_kind"
    if error.get("type") == "duplicate_kind":
        return "duplicate_preference_kind"
    loc = error.get("loc", ())
    if loc and loc[0] == "body":
        for name, code in _FIELD_CODES:
            if name in loc:
                return code
    return "invalid_request"


def _refusal(exc: RequestValidationError) -> ApiError:
    """A body the preference models refuse, as one 422 whose code names the first problem."""
    found = list(exc.errors())
    # Field and problem only: submitted values are the customer's.
    details = [
        {
            "field": ".".join(
                str(p) for p in e.get("loc", ()) if p not in ("body", "path", "header")
            )
            or "body",
            "problem": e.get("msg", ""),
        }
        for e in found
    ]
    code = _problem_code(found[0]) if found else "invalid_request"
    fields = ", ".join(sorted({d["field"] for d in details}))
    return ApiError(422, code, f"invalid alert preferences: {fields}", details)


class _PreferenceRoute(APIRoute):
    """Names body refusals by kind (unknown kind, invalid MCC, negative amount, ...)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handler(request)
            except RequestValidationError as exc:
                if any(e.get("type") == "json_invalid" for e in exc.errors()):
                    raise  # the app's handler: 400 malformed_json
                raise _refusal(exc) from None

        return route


router = APIRouter(
    prefix="/v1/customers",
    tags=["preferences"],
    responses=errors(*KEYED),
    route_class=_PreferenceRoute,
)
CUSTOMER_ID = Path(pattern=SAFE_ID, description="The CRM customer ID.")


class AlertPreferencesView(BaseModel):
    """A customer's alert preferences (or the FI's defaults) and their version."""

    customer_id: str = Field(description="The CRM customer ID.", examples=["cust-0001"])
    version: int = Field(
        description="Incremented by every change; 0: nothing stored (the FI's defaults). "
        "Also the `ETag`.",
        examples=[3],
    )
    updated_at: datetime | None = Field(description="When last changed; null for the defaults.")
    defaults: bool = Field(
        description="True: the customer stored none; these are the FI's defaults."
    )
    preferences: list[PreferenceEntry] = Field(
        description="One entry per kind: its parameters, channel and quiet-hours choice."
    )

    @classmethod
    def of(cls, stored: StoredPreferences) -> AlertPreferencesView:
        """The view of stored (or default) preferences."""
        return cls(
            customer_id=stored.customer_id,
            version=stored.version,
            updated_at=stored.updated_at,
            defaults=stored.defaults,
            preferences=list(stored.preferences.preferences),
        )


def _etag(version: int) -> str:
    return f'"{version}"'


def _expected_version(if_match: str) -> int | None:
    """The version an If-Match names (quoted or bare, weak or strong); None: none we issue."""
    tag = if_match.strip().removeprefix("W/").strip().strip('"')
    return int(tag) if tag.isascii() and tag.isdigit() and len(tag) < 10 else None


def _conflict() -> ApiError:
    return ApiError(
        412,
        "version_conflict",
        "the preferences are not at the version in If-Match; read them again and retry",
    )


def _customer_not_found(customer_id: str) -> ApiError:
    return ApiError(404, "customer_not_found", f"no customer {customer_id}")


def _scoped(identity: Identity, customer_id: str) -> None:
    ensure_owner(customer_scope(identity), customer_id, _customer_not_found(customer_id))


async def _defaults(state: ApiState) -> AlertPreferences:
    try:
        rules = await asyncio.to_thread(state.rules.condition_rules)
    except RuleSetError as exc:
        log.error("condition rules unreadable: %s", exc)
        raise ApiError(
            503, "rules_unavailable", "the FI's default preferences cannot be read; retry"
        ) from None
    return rules.defaults()


async def _customer(state: ApiState, customer_id: str, *, strict: bool) -> Customer | None:
    assert state.crm is not None
    return await crm_read(
        state.crm.get_customer(customer_id),
        missing=_customer_not_found(customer_id),
        strict=strict,
        what="customer check",
    )


@router.get(
    "/{customer_id}/alert-preferences",
    response_model=AlertPreferencesView,
    operation_id="preferences_get",
    summary="Read a customer's alert preferences",
    responses={200: {"headers": ETAG_HEADER}, **errors(404, *PARAMS)},
)
async def get_preferences(
    response: Response,
    customer_id: str = CUSTOMER_ID,
    state: ApiState = Depends(api_state),
    identity: Identity = require("channel"),
) -> AlertPreferencesView:
    """The customer's preferences, or the FI's defaults (version 0) when none are stored."""
    _scoped(identity, customer_id)
    stored = await asyncio.to_thread(PreferenceStore(state.engine).get, customer_id)
    if stored is None:
        # Defaults are no secret: when the CRM cannot answer, they are still the answer.
        await _customer(state, customer_id, strict=False)
        stored = effective(customer_id, None, await _defaults(state))
    response.headers["ETag"] = _etag(stored.version)
    return AlertPreferencesView.of(stored)


@router.put(
    "/{customer_id}/alert-preferences",
    response_model=AlertPreferencesView,
    operation_id="preferences_put",
    summary="Replace a customer's alert preferences",
    responses={
        200: {"headers": ETAG_HEADER},
        **errors(*JSON_BODY, 404, 412, 428, *UPSTREAM),
    },
)
async def put_preferences(
    body: AlertPreferences,
    response: Response,
    customer_id: str = CUSTOMER_ID,
    if_match: str | None = Header(
        default=None,
        alias="If-Match",
        description='The version read (its `ETag`, e.g. `"3"`); required once a document '
        'is stored. `"0"` (or none) writes the first one.',
    ),
    state: ApiState = Depends(api_state),
    identity: Identity = require("channel"),
) -> AlertPreferencesView:
    """Replace the preferences as a whole, over the version read (`If-Match`)."""
    _scoped(identity, customer_id)
    customer = await _customer(state, customer_id, strict=True)
    assert customer is not None  # strict: answered or refused
    unknown = sorted(body.cards() - {c.last4 for c in customer.cards})
    if unknown:
        raise ApiError(
            422,
            "unknown_card",
            f"customer {customer_id} has no card ending {', '.join(unknown)}",
        )
    store = PreferenceStore(state.engine)
    if if_match is None:
        current = await asyncio.to_thread(store.get, customer_id)
        if current is not None:
            raise ApiError(
                428,
                "precondition_required",
                "these preferences are stored already: send If-Match with the version read",
            )
        expected: int | None = 0
    else:
        expected = _expected_version(if_match)
    if expected is None:
        raise _conflict()  # not a version this API ever issued
    by = "customer" if identity.customer_id else (identity.person or "channel")
    try:
        stored = await asyncio.to_thread(
            store.put,
            customer_id,
            body,
            expected_version=expected,
            at=datetime.now(UTC),
            by=by,
        )
    except PreferenceVersionConflict:
        raise _conflict() from None
    response.headers["ETag"] = _etag(stored.version)
    return AlertPreferencesView.of(stored)

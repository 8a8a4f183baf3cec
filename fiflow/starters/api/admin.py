"""`/v1/admin/rules`: list rule sets and activate new versions without a restart.

Activating needs an admin person (a staff key or token), never the shared admin key. Rule
sets listed in the rules directory's `activation.yaml` need two: one asks, another approves.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Body, Depends, Path, Response
from pydantic import BaseModel, Field

from fiflow.domain.rules import RuleSetError
from fiflow.integrations.rule_versions import (
    NoPendingActivation,
    SameAdmin,
    VersionConflict,
)
from fiflow.integrations.rules_store import RULE_FILES
from fiflow.starters.api.auth import Identity, require
from fiflow.starters.api.errors import ApiError
from fiflow.starters.api.openapi import JSON_BODY, KEYED, PARAMS, errors
from fiflow.starters.api.state import ApiState, api_state

router = APIRouter(
    prefix="/v1/admin/rules",
    tags=["admin"],
    dependencies=[require("admin")],
    responses=errors(*KEYED),
)


class VersionInfo(BaseModel):
    """One version of a rule set."""

    version: str = Field(description="The rule set's version.", examples=["2026-01-05"])
    source: str = Field(description="`file` (shipped) or `api` (activated).", examples=["api"])
    activated_at: datetime | None = Field(default=None, description="When it was activated.")
    activated_by: str | None = Field(
        default=None, description="The admin who activated it.", examples=["admin-1"]
    )
    approved_by: str | None = Field(
        default=None, description="The second admin, for a four-eyes rule set."
    )
    active: bool = Field(description="Whether this is the version new runs use.")


class PendingInfo(BaseModel):
    """An activation waiting for a second admin."""

    version: str = Field(description="The version waiting for approval.")
    requested_by: str = Field(description="The admin who asked.", examples=["admin-1"])
    requested_at: datetime = Field(description="When.")


class RuleSetInfo(BaseModel):
    """A rule set and its versions, newest activation first; the file's version last."""

    name: str = Field(
        description="`alerts`, `credit`, `triggers` or `conditions`.", examples=["credit"]
    )
    active_version: str | None = Field(description="The version new runs use.")
    versions: list[VersionInfo] = Field(description="Newest activation first; the file's last.")
    second_admin_required: bool = Field(
        default=False, description="Whether an activation needs a second admin's approval."
    )
    pending: list[PendingInfo] = Field(
        default=[], description="Activations waiting for a second admin."
    )
    problem: str | None = Field(
        default=None, description="Why the rule file cannot be read, if it cannot."
    )


@router.get(
    "", response_model=list[RuleSetInfo], operation_id="rules_list", summary="List rule sets"
)
async def list_rules(state: ApiState = Depends(api_state)) -> list[RuleSetInfo]:
    """Every rule set (alerts, credit, triggers, conditions) with its versions."""
    return [await asyncio.to_thread(_info, state, name) for name in RULE_FILES]


@router.put(
    "/{name}",
    response_model=RuleSetInfo,
    operation_id="rules_activate",
    summary="Activate (or ask to activate) a rule version",
    responses={
        202: {"model": RuleSetInfo, "description": "Asked: a second admin must approve."},
        **errors(*JSON_BODY, 404, 409),
    },
)
async def put_rules(
    response: Response,
    name: str = Path(pattern=r"^[a-z]{1,32}$"),
    document: dict[str, Any] = Body(..., description="The rule document, as JSON"),
    state: ApiState = Depends(api_state),
    identity: Identity = require("admin", person=True),
) -> RuleSetInfo:
    """Validate and activate a new version; runs in flight keep the version they started with.

    For a four-eyes rule set this only asks (202, listed under `pending`): another admin
    approves. Until then the active version stays active.
    """
    assert identity.person is not None  # require(person=True)
    _known(name)
    if document.get("name", name) != name:
        raise ApiError(422, "invalid_rules", f"the document's name must be {name!r}")
    parser = RULE_FILES[name][1]
    try:
        rules = parser({**document, "name": name}, source=f"{name} rules")
    except RuleSetError as exc:
        raise ApiError(422, "invalid_rules", str(exc)) from None
    content = {**document, "name": name}
    try:
        if await asyncio.to_thread(_second_admin_required, state, name):
            pending = await asyncio.to_thread(
                state.rule_versions.request_activation,
                name,
                rules.version,
                content,
                requested_at=datetime.now(UTC),
                requested_by=identity.person,
            )
            if pending is not None:
                response.status_code = 202
        else:
            await asyncio.to_thread(
                state.rule_versions.activate,
                name,
                rules.version,
                content,
                activated_at=datetime.now(UTC),
                activated_by=identity.person,
            )
    except VersionConflict as exc:
        raise ApiError(409, "version_exists", str(exc)) from None
    return await asyncio.to_thread(_info, state, name)


@router.post(
    "/{name}/versions/{version}/approve",
    response_model=RuleSetInfo,
    operation_id="rules_approve",
    summary="Approve another admin's activation",
    responses=errors(404, 409, *PARAMS),
)
async def approve_rules(
    name: str = Path(pattern=r"^[a-z]{1,32}$"),
    version: str = Path(min_length=1, max_length=64),
    state: ApiState = Depends(api_state),
    identity: Identity = require("admin", person=True),
) -> RuleSetInfo:
    """Approve another admin's pending activation: the version becomes the active one."""
    assert identity.person is not None  # require(person=True)
    _known(name)
    try:
        await asyncio.to_thread(
            state.rule_versions.approve,
            name,
            version,
            approved_by=identity.person,
            approved_at=datetime.now(UTC),
        )
    except NoPendingActivation:
        raise ApiError(
            404, "no_pending_activation", f"no activation of {name} {version!r} waits for approval"
        ) from None
    except SameAdmin:
        raise ApiError(
            403, "second_admin_required", "the admin who asked for an activation cannot approve it"
        ) from None
    except VersionConflict as exc:
        raise ApiError(409, "version_exists", str(exc)) from None
    return await asyncio.to_thread(_info, state, name)


def _known(name: str) -> None:
    if name not in RULE_FILES:
        raise ApiError(
            404, "unknown_rule_set", f"no rule set {name!r}; known: {', '.join(RULE_FILES)}"
        )


def _second_admin_required(state: ApiState, name: str) -> bool:
    try:
        return state.rules.second_admin_required(name)
    except RuleSetError as exc:
        # Unsure whether four eyes are needed: activate nothing rather than guess.
        raise ApiError(503, "rules_unavailable", str(exc)) from None


def _info(state: ApiState, name: str) -> RuleSetInfo:
    activated = state.rule_versions.versions(name)
    active_row = activated[0] if activated else None
    approvers = {
        (r.version, r.decided_at): r.decided_by
        for r in state.rule_versions.requests(name, "approved")
    }
    versions = [
        VersionInfo(
            version=v.version,
            source="api",
            activated_at=v.activated_at,
            activated_by=v.activated_by,
            approved_by=approvers.get((v.version, v.activated_at)),
            active=v is active_row,
        )
        for v in activated
    ]
    pending = [
        PendingInfo(version=r.version, requested_by=r.requested_by, requested_at=r.requested_at)
        for r in state.rule_versions.requests(name)
    ]
    try:
        four_eyes = state.rules.second_admin_required(name)
    except RuleSetError:
        four_eyes = True
    problem = None
    try:
        file_version = state.rules.from_file(name).version
        versions.append(VersionInfo(version=file_version, source="file", active=active_row is None))
    except RuleSetError as exc:
        problem = str(exc)
    active = (
        active_row.version
        if active_row
        else next((v.version for v in versions if v.source == "file"), None)
    )
    return RuleSetInfo(
        name=name,
        active_version=active,
        versions=versions,
        second_admin_required=four_eyes,
        pending=pending,
        problem=problem,
    )

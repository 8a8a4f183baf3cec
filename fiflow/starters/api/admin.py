"""`/v1/admin/rules`: list rule sets and activate new versions without a restart."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Body, Depends, Path
from pydantic import BaseModel

from fiflow.domain.rules import RuleSetError
from fiflow.integrations.rule_versions import VersionConflict
from fiflow.integrations.rules_store import RULE_FILES
from fiflow.starters.api.auth import require
from fiflow.starters.api.errors import ApiError
from fiflow.starters.api.state import ApiState, api_state

router = APIRouter(prefix="/v1/admin/rules", tags=["admin"], dependencies=[require("admin")])


class VersionInfo(BaseModel):
    """One version of a rule set."""

    version: str
    source: str  # "file" or "api"
    activated_at: datetime | None = None
    activated_by: str | None = None
    active: bool


class RuleSetInfo(BaseModel):
    """A rule set and its versions, newest activation first; the file's version last."""

    name: str
    active_version: str | None
    versions: list[VersionInfo]
    problem: str | None = None


@router.get("", response_model=list[RuleSetInfo])
async def list_rules(state: ApiState = Depends(api_state)) -> list[RuleSetInfo]:
    """Every rule set (alerts, credit, triggers) with its versions."""
    return [await asyncio.to_thread(_info, state, name) for name in RULE_FILES]


@router.put("/{name}", response_model=RuleSetInfo)
async def put_rules(
    name: str = Path(pattern=r"^[a-z]{1,32}$"),
    document: dict[str, Any] = Body(..., description="The rule document, as JSON"),
    state: ApiState = Depends(api_state),
) -> RuleSetInfo:
    """Validate and activate a new version; runs in flight keep the version they started with."""
    if name not in RULE_FILES:
        raise ApiError(
            404, "unknown_rule_set", f"no rule set {name!r}; known: {', '.join(RULE_FILES)}"
        )
    if document.get("name", name) != name:
        raise ApiError(422, "invalid_rules", f"the document's name must be {name!r}")
    parser = RULE_FILES[name][1]
    try:
        rules = parser({**document, "name": name}, source=f"{name} rules")
    except RuleSetError as exc:
        raise ApiError(422, "invalid_rules", str(exc)) from None
    try:
        await asyncio.to_thread(
            state.rule_versions.activate,
            name,
            rules.version,
            {**document, "name": name},
            activated_at=datetime.now(UTC),
            activated_by="admin-api",
        )
    except VersionConflict as exc:
        raise ApiError(409, "version_exists", str(exc)) from None
    return await asyncio.to_thread(_info, state, name)


def _info(state: ApiState, name: str) -> RuleSetInfo:
    activated = state.rule_versions.versions(name)
    active_row = activated[0] if activated else None
    versions = [
        VersionInfo(
            version=v.version,
            source="api",
            activated_at=v.activated_at,
            activated_by=v.activated_by,
            active=v is active_row,
        )
        for v in activated
    ]
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
    return RuleSetInfo(name=name, active_version=active, versions=versions, problem=problem)

"""`GET /v1/admin/rules/{name}/versions/{version}`: one version's rule document, to compare
versions (`fiflow rules diff`) or activate an earlier one again (a rollback)."""

from __future__ import annotations

import asyncio
from typing import Any

import yaml
from fastapi import APIRouter, Depends, Path
from pydantic import BaseModel, Field

from fiflow.domain.rules import RuleSetError
from fiflow.integrations.rules_store import RULE_FILES
from fiflow.starters.api.auth import require
from fiflow.starters.api.errors import ApiError
from fiflow.starters.api.openapi import KEYED, PARAMS, errors
from fiflow.starters.api.state import ApiState, api_state

router = APIRouter(
    prefix="/v1/admin/rules",
    tags=["admin"],
    dependencies=[require("admin")],
    responses=errors(*KEYED),
)


class RuleDocument(BaseModel):
    """One version of a rule set, as its document."""

    name: str = Field(description="The rule set.", examples=["credit"])
    version: str = Field(description="The version.", examples=["2026.11.1"])
    source: str = Field(
        description="`api` (activated through the API), `pending` (waiting for a second "
        "admin) or `file` (the rule file's version).",
        examples=["api"],
    )
    content: dict[str, Any] = Field(description="The rule document, as JSON.")


@router.get(
    "/{name}/versions/{version}",
    response_model=RuleDocument,
    operation_id="rules_version_get",
    summary="Read one version's rule document",
    responses=errors(404, *PARAMS),
)
async def get_rule_version(
    name: str = Path(pattern=r"^[a-z]{1,32}$"),
    version: str = Path(min_length=1, max_length=64),
    state: ApiState = Depends(api_state),
) -> RuleDocument:
    """A version stored by an activation, waiting for approval, or in the rule file."""
    if name not in RULE_FILES:
        raise ApiError(
            404, "unknown_rule_set", f"no rule set {name!r}; known: {', '.join(RULE_FILES)}"
        )
    found = await asyncio.to_thread(_document, state, name, version)
    if found is None:
        raise ApiError(404, "unknown_version", f"no version {version!r} of the {name} rules")
    source, content = found
    return RuleDocument(name=name, version=version, source=source, content=content)


def _document(state: ApiState, name: str, version: str) -> tuple[str, dict[str, Any]] | None:
    stored = state.rule_versions.content(name, version)
    if stored is not None:
        return stored
    try:
        if state.rules.from_file(name).version != version:
            return None
        # The file as written (from_file validated it): YAML is a superset of JSON.
        content = yaml.safe_load(state.rules.path(name).read_text(encoding="utf-8"))
    except (RuleSetError, OSError):
        return None
    return ("file", content) if isinstance(content, dict) else None

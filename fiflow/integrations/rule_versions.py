"""Rule set versions activated at run time: every activation kept, the newest one active."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine, RowMapping

from fiflow.integrations.database import begin_write, rule_activation_requests, rule_versions

_t = rule_versions.c

_r = rule_activation_requests.c

# Newest activation first; id breaks ties between activations given the same instant.
_NEWEST_FIRST = (_t.activated_at.desc(), _t.id.desc())


class VersionConflict(ValueError):
    """A rule set version that is already stored with different content."""


class NoPendingActivation(LookupError):
    """No activation of that version waits for approval."""


class SameAdmin(PermissionError):
    """The admin who asked for an activation tried to approve it too."""


class PendingActivation(BaseModel):
    """An activation waiting for a second admin, or approved by one."""

    id: int
    name: str
    version: str
    content_sha256: str
    requested_at: AwareDatetime
    requested_by: str
    status: str
    decided_at: AwareDatetime | None = None
    decided_by: str | None = None


class _VersionFields(BaseModel):
    model_config = ConfigDict(frozen=True)

    # Lengths mirror the columns: PostgreSQL enforces them and SQLite would not, so both
    # dialects refuse the same values here, before the database is reached.
    name: str = Field(min_length=1, max_length=32)
    version: str = Field(min_length=1, max_length=64)
    content: dict[str, Any]
    content_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    activated_at: AwareDatetime
    activated_by: str | None = Field(default=None, max_length=64)

    @field_validator("activated_at")
    @classmethod
    def _in_utc(cls, value: datetime) -> datetime:
        # SQLite keeps no offset, so only UTC values store and compare the same on both.
        return value.astimezone(UTC)


class RuleVersion(_VersionFields):
    """One activation of a rule set version, as stored."""

    id: int


def _content_sha256(content: dict[str, Any]) -> str:
    # Canonical JSON, so key order and whitespace never make equal rules look different.
    try:
        canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"rule content must be plain JSON data: {exc}") from exc
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


class RuleVersionStore:
    """Activates and reads rule set versions; safe for concurrent callers in many processes."""

    def __init__(self, engine: Engine) -> None:
        if engine.dialect.name not in ("postgresql", "sqlite"):
            raise ValueError(
                f"RuleVersionStore supports PostgreSQL and SQLite, not {engine.dialect.name}"
            )
        self._engine = engine

    def activate(
        self,
        name: str,
        version: str,
        content: dict[str, Any],
        *,
        activated_at: datetime,
        activated_by: str | None = None,
    ) -> RuleVersion:
        """Make this version the active one.

        The active version again with the same content is a retry: nothing changes. An older
        version again with its same content is a rollback: it becomes active once more.
        """
        if not isinstance(content, dict):
            raise ValueError(f"rule content must be a JSON object, not {type(content).__name__}")
        new = _VersionFields(
            name=name,
            version=version,
            content=content,
            content_sha256=_content_sha256(content),
            activated_at=activated_at,
            activated_by=activated_by,
        )
        with begin_write(self._engine) as conn:
            return self._activate(conn, new)

    def _activate(self, conn: sa.Connection, new: _VersionFields) -> RuleVersion:
        name, version, activated_by = new.name, new.version, new.activated_by
        insert = postgresql.insert if self._engine.dialect.name == "postgresql" else sqlite.insert
        # DO NOTHING rather than check-then-insert: a racing activation of the same version
        # waits for the other's commit and then returns no row, so it is stored once.
        stmt = (
            insert(rule_versions)
            .values(**new.model_dump())
            .on_conflict_do_nothing(index_elements=[_t.name, _t.version])
            .returning(*rule_versions.c)
        )
        row = conn.execute(stmt).mappings().first()
        if row is None:
            # Read in the same transaction: the conflicting row is committed by now.
            row = (
                conn.execute(sa.select(rule_versions).where(_t.name == name, _t.version == version))
                .mappings()
                .one()
            )
            if row["content_sha256"] != new.content_sha256:
                raise VersionConflict(
                    f"rule set {name!r} version {version!r} is already stored with other "
                    f"content (sha256 {row['content_sha256']}, not {new.content_sha256}); "
                    "changed rules need a new version"
                )
            active_id = conn.scalar(
                sa.select(_t.id).where(_t.name == name).order_by(*_NEWEST_FIRST).limit(1)
            )
            if active_id != row["id"]:
                # An older version again: a rollback, so it becomes the active one.
                row = (
                    conn.execute(
                        sa.update(rule_versions)
                        .where(_t.id == row["id"])
                        .values(activated_at=new.activated_at, activated_by=activated_by)
                        .returning(*rule_versions.c)
                    )
                    .mappings()
                    .one()
                )
        return _from_row(row)

    def request_activation(
        self,
        name: str,
        version: str,
        content: dict[str, Any],
        *,
        requested_at: datetime,
        requested_by: str,
    ) -> PendingActivation | None:
        """Ask for an activation a second admin must approve; None if it is already active.

        The same version and content again is the same request; other content under a version
        that is stored or pending is a VersionConflict.
        """
        fields = _VersionFields(
            name=name,
            version=version,
            content=content,
            content_sha256=_content_sha256(content),
            activated_at=requested_at,
            activated_by=requested_by,
        )
        insert = postgresql.insert if self._engine.dialect.name == "postgresql" else sqlite.insert
        pending_only = _r.status == "pending"
        with begin_write(self._engine) as conn:
            stored = conn.execute(
                sa.select(_t.id, _t.content_sha256).where(_t.name == name, _t.version == version)
            ).first()
            if stored is not None:
                if stored.content_sha256 != fields.content_sha256:
                    raise VersionConflict(
                        f"rule set {name!r} version {version!r} is already stored with other "
                        "content; changed rules need a new version"
                    )
                active_id = conn.scalar(
                    sa.select(_t.id).where(_t.name == name).order_by(*_NEWEST_FIRST).limit(1)
                )
                if active_id == stored.id:
                    return None
            stmt = (
                insert(rule_activation_requests)
                .values(
                    name=name,
                    version=version,
                    content=content,
                    content_sha256=fields.content_sha256,
                    requested_at=fields.activated_at,
                    requested_by=requested_by,
                    status="pending",
                )
                .on_conflict_do_nothing(
                    index_elements=[_r.name, _r.version], index_where=pending_only
                )
                .returning(*rule_activation_requests.c)
            )
            row = conn.execute(stmt).mappings().first()
            if row is None:
                row = (
                    conn.execute(
                        sa.select(rule_activation_requests).where(
                            _r.name == name, _r.version == version, pending_only
                        )
                    )
                    .mappings()
                    .one()
                )
                if row["content_sha256"] != fields.content_sha256:
                    raise VersionConflict(
                        f"rule set {name!r} version {version!r} is already waiting for approval "
                        "with other content; changed rules need a new version"
                    )
        return _request_from_row(row)

    def approve(
        self, name: str, version: str, *, approved_by: str, approved_at: datetime
    ) -> RuleVersion:
        """Activate a pending version as a second admin: SameAdmin for the one who asked."""
        with begin_write(self._engine) as conn:
            row = (
                conn.execute(
                    sa.select(rule_activation_requests)
                    .where(_r.name == name, _r.version == version, _r.status == "pending")
                    .with_for_update()
                )
                .mappings()
                .first()
            )
            if row is None:
                raise NoPendingActivation(f"no activation of {name} version {version} is pending")
            if row["requested_by"] == approved_by:
                raise SameAdmin("an activation needs a second admin: not the one who asked")
            new = _VersionFields(
                name=name,
                version=version,
                content=row["content"],
                content_sha256=row["content_sha256"],
                activated_at=approved_at,
                activated_by=row["requested_by"],
            )
            conn.execute(
                sa.update(rule_activation_requests)
                .where(_r.id == row["id"])
                .values(status="approved", decided_at=new.activated_at, decided_by=approved_by)
            )
            return self._activate(conn, new)

    def requests(self, name: str, status: str = "pending") -> list[PendingActivation]:
        """Activation requests of a rule set in one status, oldest first."""
        stmt = (
            sa.select(rule_activation_requests)
            .where(_r.name == name, _r.status == status)
            .order_by(_r.requested_at, _r.id)
        )
        with self._engine.connect() as conn:
            rows = conn.execute(stmt).mappings().all()
        return [_request_from_row(r) for r in rows]

    def active(self, name: str) -> RuleVersion | None:
        """The most recently activated version of a rule set, or None if none was activated."""
        stmt = sa.select(rule_versions).where(_t.name == name).order_by(*_NEWEST_FIRST).limit(1)
        with self._engine.connect() as conn:
            row = conn.execute(stmt).mappings().first()
        return None if row is None else _from_row(row)

    def versions(self, name: str | None = None) -> list[RuleVersion]:
        """Every stored version (of one rule set, or of all), newest activation first."""
        stmt = sa.select(rule_versions).order_by(*_NEWEST_FIRST)
        if name is not None:
            stmt = stmt.where(_t.name == name)
        with self._engine.connect() as conn:
            rows = conn.execute(stmt).mappings().all()
        return [_from_row(r) for r in rows]

    def content(self, name: str, version: str) -> tuple[str, dict[str, Any]] | None:
        """("api", content) of a stored version, ("pending", content) of one awaiting approval."""
        stored = sa.select(_t.content).where(_t.name == name, _t.version == version)
        pending = sa.select(_r.content).where(
            _r.name == name, _r.version == version, _r.status == "pending"
        )
        with self._engine.connect() as conn:
            found = conn.scalar(stored)
            if found is not None:
                return "api", dict(found)
            found = conn.scalar(pending)
        return None if found is None else ("pending", dict(found))

    def active_marker(self, name: str) -> tuple[int, str] | None:
        """(id, version) of the active version, cheap enough to poll before reloading content."""
        stmt = sa.select(_t.id, _t.version).where(_t.name == name).order_by(*_NEWEST_FIRST).limit(1)
        with self._engine.connect() as conn:
            row = conn.execute(stmt).first()
        return None if row is None else (row.id, row.version)


def _from_row(row: RowMapping) -> RuleVersion:
    values = dict(row)
    # SQLite hands back naive datetimes; what the store wrote there is UTC.
    if values["activated_at"].tzinfo is None:
        values["activated_at"] = values["activated_at"].replace(tzinfo=UTC)
    return RuleVersion.model_validate(values)


def _request_from_row(row: RowMapping) -> PendingActivation:
    values = {k: v for k, v in dict(row).items() if k != "content"}
    for column in ("requested_at", "decided_at"):
        # SQLite hands back naive datetimes; what the store wrote there is UTC.
        if values[column] is not None and values[column].tzinfo is None:
            values[column] = values[column].replace(tzinfo=UTC)
    return PendingActivation.model_validate(values)

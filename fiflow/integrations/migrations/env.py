"""Alembic environment: migrates the database at the URL fiflow passes in."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context
from sqlalchemy.engine import Connection

from fiflow.integrations.database import begin_write, create_db_engine, metadata

# Arbitrary constant: the key of the PostgreSQL advisory lock that serialises
# migrations when several workers start at once.
_MIGRATION_LOCK_KEY = 0x0F1F_1075

config = context.config


def _url() -> str:
    url = config.attributes.get("url") or config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("no database URL: set config.attributes['url'] or sqlalchemy.url")
    return str(url)


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        # SQLite cannot ALTER most things; batch mode makes autogenerate emit copy-and-move.
        render_as_batch=connection.dialect.name == "sqlite",
    )
    context.run_migrations()


def run_migrations_offline() -> None:
    """Emit the migration SQL without connecting."""
    context.configure(url=_url(), target_metadata=metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Migrate inside one transaction that other migrating processes wait on."""
    engine = create_db_engine(_url())
    try:
        # The caller's transaction counts as external, so Alembic neither commits it nor
        # opens its own: version check, DDL and version stamp all happen under the lock
        # (BEGIN IMMEDIATE on SQLite, the advisory lock on PostgreSQL).
        with begin_write(engine) as connection:
            if connection.dialect.name == "postgresql":
                connection.execute(
                    sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK_KEY}
                )
            _run(connection)
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()

"""Database fixtures for the store tests: each test on a fresh SQLite and PostgreSQL database."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy.engine import Engine

from fiflow.integrations.database import create_db_engine, upgrade_database


@pytest.fixture
def migrated_url(fresh_database_url: str) -> str:
    """A fresh database with every migration applied."""
    upgrade_database(fresh_database_url)
    return fresh_database_url


@pytest.fixture
def engine(migrated_url: str) -> Iterator[Engine]:
    """An engine on the migrated database, disposed after the test."""
    engine = create_db_engine(migrated_url)
    yield engine
    engine.dispose()

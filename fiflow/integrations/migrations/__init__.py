"""Alembic migrations for the fiflow database."""

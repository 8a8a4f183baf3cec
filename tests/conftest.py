"""Shared fixtures live in tests/fixtures/; this registers them for the whole suite."""

pytest_plugins = [
    "tests.fixtures.postgres",
    "tests.fixtures.temporal",
]

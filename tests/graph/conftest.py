"""The store fixtures of tests/store: every graph test runs on SQLite and on PostgreSQL."""

from store.conftest import engine  # noqa: F401 - the fixture, shared

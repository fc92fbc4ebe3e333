"""The databases every store and service test runs against: a SQLite file and, when reachable, PostgreSQL.

PostgreSQL is on 127.0.0.1:5432 (trust auth, database ``test``). Each use gets a schema of its own, selected
through ``search_path`` in the URL and dropped afterwards, so parallel runs never see each other's tables.
With ``KUBEGUARD_REQUIRE_SERVICES=1`` an unreachable PostgreSQL fails the test instead of skipping it.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

POSTGRES_DSN = os.environ.get("KUBEGUARD_TEST_POSTGRES", "host=127.0.0.1 port=5432 user=postgres dbname=test")
POSTGRES_URL = os.environ.get("KUBEGUARD_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
DIALECTS = ("sqlite", "postgresql")


def _postgres_or_skip():
    import psycopg

    try:
        return psycopg.connect(POSTGRES_DSN, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        if os.environ.get("KUBEGUARD_REQUIRE_SERVICES") == "1":
            pytest.fail(f"PostgreSQL is required (KUBEGUARD_REQUIRE_SERVICES=1) but unreachable: {exc}")
        pytest.skip(f"PostgreSQL unreachable: {exc}")


@contextmanager
def database_url(dialect: str, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database of ``dialect`` as a SQLAlchemy URL."""
    if dialect == "sqlite":
        yield f"sqlite:///{tmp_path / 'kubeguard.db'}"
        return
    admin = _postgres_or_skip()
    schema = f"kg_test_{uuid.uuid4().hex[:12]}"
    admin.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"
    finally:
        admin.execute(f'DROP SCHEMA "{schema}" CASCADE')
        admin.close()

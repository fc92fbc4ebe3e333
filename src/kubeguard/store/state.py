"""Detector state (first-seen sets) kept in the store, so a restart neither forgets nor re-alerts."""

from __future__ import annotations

import hashlib

from sqlalchemy import Engine

from kubeguard.store import schema
from kubeguard.store.database import now_ms
from kubeguard.store.dialect import insert_if_absent

MAX_SCOPE_LENGTH = 128
MAX_KEY_LENGTH = 512


def _fit(value: str, limit: int) -> str:
    """Values longer than their column are replaced by a digest, which keeps them distinct."""
    if len(value) <= limit:
        return value
    return "sha256:" + hashlib.sha256(value.encode()).hexdigest()


class SqlState:
    """:class:`kubeguard.detectors.base.StateStore` on the ``kg_state`` table.

    ``first_seen`` is one ``INSERT ... ON CONFLICT DO NOTHING``: the database decides atomically which of
    several workers saw a key first.
    """

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def first_seen(self, scope: str, key: str) -> bool:
        values = {
            "scope": _fit(scope, MAX_SCOPE_LENGTH),
            "key": _fit(key, MAX_KEY_LENGTH),
            "created_at_ms": now_ms(),
        }
        with self._engine.begin() as conn:
            return insert_if_absent(conn, schema.state, values)

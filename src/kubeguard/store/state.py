"""Detector state (first-seen sets) kept in the store, so a restart neither forgets nor re-alerts."""

from __future__ import annotations

import hashlib

from sqlalchemy import Engine, delete, insert, select

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


#: Keys this process knows to be remembered, kept to skip the database on repeats.
KNOWN_CACHE_SIZE = 100_000


class SqlState:
    """:class:`kubeguard.detectors.base.StateStore` on the ``kg_state`` and ``kg_blobs`` tables.

    ``first_seen`` is one ``INSERT ... ON CONFLICT DO NOTHING``: the database decides atomically which of
    several workers saw a key first. Keys already known to be remembered are answered from memory.
    """

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._known: set[tuple[str, str]] = set()

    def first_seen(self, scope: str, key: str) -> bool:
        cell = (_fit(scope, MAX_SCOPE_LENGTH), _fit(key, MAX_KEY_LENGTH))
        if cell in self._known:
            return False
        values = {"scope": cell[0], "key": cell[1], "created_at_ms": now_ms()}
        with self._engine.begin() as conn:
            added = insert_if_absent(conn, schema.state, values)
        self._remember(cell)
        return added

    def seen(self, scope: str, key: str) -> bool:
        cell = (_fit(scope, MAX_SCOPE_LENGTH), _fit(key, MAX_KEY_LENGTH))
        if cell in self._known:
            return True
        table = schema.state
        query = select(table.c.key).where(table.c.scope == cell[0], table.c.key == cell[1])
        with self._engine.connect() as conn:
            found = conn.execute(query).first() is not None
        if found:
            self._remember(cell)
        return found

    def forget(self, scope: str, key: str) -> None:
        cell = (_fit(scope, MAX_SCOPE_LENGTH), _fit(key, MAX_KEY_LENGTH))
        self._known.discard(cell)
        table = schema.state
        with self._engine.begin() as conn:
            conn.execute(delete(table).where(table.c.scope == cell[0], table.c.key == cell[1]))

    def get_blob(self, name: str) -> bytes | None:
        table = schema.blobs
        with self._engine.connect() as conn:
            data = conn.execute(select(table.c.data).where(table.c.name == name)).scalar()
        return bytes(data) if data is not None else None

    def put_blob(self, name: str, data: bytes) -> None:
        """Replace the blob in one transaction: readers see the old or the new one, never neither."""
        table = schema.blobs
        with self._engine.begin() as conn:
            conn.execute(delete(table).where(table.c.name == name))
            conn.execute(insert(table).values(name=name, data=data, updated_at_ms=now_ms()))

    def _remember(self, cell: tuple[str, str]) -> None:
        if len(self._known) >= KNOWN_CACHE_SIZE:
            self._known.clear()
        self._known.add(cell)

"""Where a live source puts what it read: the service's durable spool, with its cursor in the same commit."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Connection, Engine

from kubeguard.store.spool import Spool

CursorWrite = Callable[[Connection], None]


class SpoolWriter:
    """Appends source batches to the spool the webhook uses, and wakes the drainer."""

    def __init__(self, engine: Engine, spool: Spool, wake: Callable[[], None] | None = None) -> None:
        self._engine = engine
        self._spool = spool
        self._wake = wake

    def append(self, cluster: str, body: bytes, event_count: int, cursor: CursorWrite) -> None:
        """Store a batch and the cursor that moves past it, atomically."""
        self._spool.append(cluster, body, event_count, also=cursor)
        if self._wake is not None:
            self._wake()

    def commit(self, cursor: CursorWrite) -> None:
        """Move the cursor over records that held no event (rejects, duplicates, an empty read)."""
        with self._engine.begin() as conn:
            cursor(conn)

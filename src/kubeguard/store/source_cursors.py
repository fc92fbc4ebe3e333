"""Where live sources resume: one position per source, and the CloudWatch event ids already read.

Both are written by the source inside the transaction that appends the batch they cover to the spool
(:meth:`kubeguard.store.spool.Spool.append` with ``also``), so after a crash at any instant the stored position
and the stored batches agree: nothing read is lost and nothing is read twice.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, delete, insert, select, update

from kubeguard.store import schema
from kubeguard.store.database import now_ms

_cursors = schema.source_cursors
_seen = schema.source_seen


@dataclass(slots=True, frozen=True)
class SeenEvent:
    event_id: str
    audit_key: str | None
    timestamp_ms: int


def load_position(engine: Engine, source: str) -> dict[str, Any] | None:
    """The last committed position of ``source``; None before its first commit."""
    with engine.connect() as conn:
        row = conn.execute(select(_cursors.c.position).where(_cursors.c.source == source)).first()
    return orjson.loads(row.position) if row is not None else None


def save_position(conn: Connection, source: str, position: dict[str, Any]) -> None:
    """Store ``position`` inside the caller's transaction (an update, else an insert)."""
    values = {"position": orjson.dumps(position).decode(), "updated_at_ms": now_ms()}
    result = conn.execute(update(_cursors).where(_cursors.c.source == source).values(**values))
    if not result.rowcount:
        conn.execute(insert(_cursors).values(source=source, **values))


def load_seen(engine: Engine, source: str) -> list[SeenEvent]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(_seen.c.event_id, _seen.c.audit_key, _seen.c.timestamp_ms).where(_seen.c.source == source)
        )
        return [SeenEvent(row.event_id, row.audit_key, row.timestamp_ms) for row in rows]


def add_seen(conn: Connection, source: str, events: Iterable[SeenEvent]) -> None:
    rows = [
        {"source": source, "event_id": e.event_id, "audit_key": e.audit_key, "timestamp_ms": e.timestamp_ms}
        for e in events
    ]
    if rows:
        conn.execute(insert(_seen), rows)


def forget_seen_before(conn: Connection, source: str, timestamp_ms: int) -> None:
    """Drop ids of events older than any future re-read can reach."""
    conn.execute(delete(_seen).where(_seen.c.source == source, _seen.c.timestamp_ms < timestamp_ms))

"""The durable outbox: findings waiting for a sink, in the store, so a restart or an outage loses nothing.

A finding is staged for each sink that wants it in the same transaction that records it, so "recorded"
implies "will be delivered". Each sink's worker takes the rows that are due in id order, deletes what it
delivered and reschedules what failed. The outbox of a sink is bounded (``outbox_size``): past the bound a
new event is refused and counted rather than letting one dead destination fill the disk.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import Connection, delete, func, select, update

from kubeguard.store import schema

_table = schema.outbox


@dataclass(frozen=True, slots=True)
class Pending:
    id: int
    finding: dict[str, Any]
    enqueued_at_ms: int
    attempts: int


def depth(conn: Connection, sink: str) -> int:
    return int(conn.execute(select(func.count()).where(_table.c.sink == sink)).scalar_one())


def depths(conn: Connection) -> dict[str, int]:
    rows = conn.execute(select(_table.c.sink, func.count()).group_by(_table.c.sink))
    return {sink: int(count) for sink, count in rows}


def add(conn: Connection, sink: str, findings: Sequence[dict[str, Any]], now_ms: int) -> None:
    if findings:
        conn.execute(
            _table.insert(),
            [
                {
                    "sink": sink,
                    "finding_id": str(finding.get("id", ""))[:64],
                    "body": orjson.dumps(finding).decode(),
                    "enqueued_at_ms": now_ms,
                    "attempts": 0,
                    "next_attempt_ms": now_ms,
                }
                for finding in findings
            ],
        )


def due(conn: Connection, sink: str, now_ms: int, limit: int) -> list[Pending]:
    """The sink's oldest events, in order, up to the first one not yet due: a sink delivers in order, so an
    event waiting for its retry holds back those behind it (a PagerDuty resolve never overtakes its trigger).
    """
    query = (
        select(_table.c.id, _table.c.body, _table.c.enqueued_at_ms, _table.c.attempts, _table.c.next_attempt_ms)
        .where(_table.c.sink == sink)
        .order_by(_table.c.id)
        .limit(limit)
    )
    rows: list[Pending] = []
    for row in conn.execute(query):
        if row.next_attempt_ms > now_ms:
            break
        rows.append(Pending(row.id, orjson.loads(row.body), row.enqueued_at_ms, row.attempts))
    return rows


def next_due_ms(conn: Connection, sink: str) -> int | None:
    """When the sink's oldest event is due (the head of its queue), or None when the outbox is empty."""
    value = conn.execute(
        select(_table.c.next_attempt_ms).where(_table.c.sink == sink).order_by(_table.c.id).limit(1)
    ).scalar()
    return None if value is None else int(value)


def remove(conn: Connection, ids: Iterable[int]) -> None:
    wanted = list(ids)
    if wanted:
        conn.execute(delete(_table).where(_table.c.id.in_(wanted)))


def clear(conn: Connection, sink: str) -> int:
    return conn.execute(delete(_table).where(_table.c.sink == sink)).rowcount


def reschedule(conn: Connection, rows: Iterable[Pending], next_attempt_ms: int, error: str) -> None:
    for row in rows:
        conn.execute(
            update(_table)
            .where(_table.c.id == row.id)
            .values(attempts=row.attempts + 1, next_attempt_ms=next_attempt_ms, last_error=error[:2000])
        )

"""Failure records of bus batches, shared by every worker through the store, and the bus's totals.

Failures are counted here rather than in a worker's memory so the attempt limit holds however often the
batch moves between workers; a store outage is not counted (the worker tells it apart). Done marks are the
batch processor's (``kg_batches``, ``bus:<digest>``), read here only for the totals.
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, Engine, delete, func, insert, select, update

from kubeguard.store import schema
from kubeguard.store.database import now_ms

_done = schema.batches
_failures = schema.batch_failures
MAX_REASON_LENGTH = 2000


@dataclass(frozen=True, slots=True)
class DeadLetter:
    batch_key: str
    cluster: str
    stream_seq: int
    event_count: int
    attempts: int
    reason: str
    dead_at_ms: int


def clear_failures(conn: Connection, batch_key: str) -> None:
    """Inside the transaction that stores the batch: earlier failed attempts are forgotten."""
    conn.execute(delete(_failures).where(_failures.c.batch_key == batch_key, _failures.c.dead_at_ms.is_(None)))


def record_failure(
    engine: Engine, batch_key: str, cluster: str, stream_seq: int, event_count: int, reason: str
) -> int:
    """Count one failed attempt (its own transaction); returns the attempts so far."""
    reason = reason[:MAX_REASON_LENGTH]
    with engine.begin() as conn:
        updated = conn.execute(
            update(_failures)
            .where(_failures.c.batch_key == batch_key)
            .values(attempts=_failures.c.attempts + 1, reason=reason)
            .returning(_failures.c.attempts)
        ).first()
        if updated is not None:
            return int(updated[0])
        conn.execute(
            insert(_failures).values(
                batch_key=batch_key,
                cluster=cluster,
                stream_seq=stream_seq,
                event_count=event_count,
                attempts=1,
                reason=reason,
                first_failed_at_ms=now_ms(),
            )
        )
        return 1


def mark_dead(engine: Engine, batch_key: str) -> None:
    """The batch went to the dead-letter subject: record when, for /api/spool and /metrics."""
    with engine.begin() as conn:
        conn.execute(update(_failures).where(_failures.c.batch_key == batch_key).values(dead_at_ms=now_ms()))


def dead_letters(conn: Connection, limit: int = 20) -> list[DeadLetter]:
    """The most recent dead letters, newest first."""
    rows = conn.execute(
        select(_failures)
        .where(_failures.c.dead_at_ms.is_not(None))
        .order_by(_failures.c.dead_at_ms.desc())
        .limit(limit)
    ).mappings()
    return [
        DeadLetter(
            row["batch_key"],
            row["cluster"],
            row["stream_seq"],
            row["event_count"],
            row["attempts"],
            row["reason"],
            row["dead_at_ms"],
        )
        for row in rows
    ]


def totals(conn: Connection) -> dict[str, int]:
    done = conn.execute(
        select(func.count(), func.coalesce(func.sum(_done.c.events), 0)).where(_done.c.batch_id.like("bus:%"))
    ).one()
    dead = conn.execute(
        select(func.count(), func.coalesce(func.sum(_failures.c.event_count), 0)).where(
            _failures.c.dead_at_ms.is_not(None)
        )
    ).one()
    retrying = conn.execute(select(func.count()).where(_failures.c.dead_at_ms.is_(None))).scalar_one()
    return {
        "batches_done": int(done[0]),
        "events_done": int(done[1]),
        "batches_dead": int(dead[0]),
        "events_dead": int(dead[1]),
        "batches_retrying": int(retrying),
    }

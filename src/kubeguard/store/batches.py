"""Done marks and failure records of bus batches, shared by every worker through the store.

The done mark is written in the transaction that stores the batch's findings, so "findings stored" and
"batch done" are one fact: a redelivered batch that finds its mark is acknowledged without being processed
again, and two workers racing on the same batch cannot both commit (the mark's primary key refuses the
second). Failures are counted here rather than in a worker's memory so the attempt limit holds however
often the batch moves between workers.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, Engine, delete, func, insert, select, update

from kubeguard.store import schema
from kubeguard.store.database import now_ms

_done = schema.batches_done
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


def is_done(conn: Connection, batch_key: str) -> bool:
    return conn.execute(select(_done.c.batch_key).where(_done.c.batch_key == batch_key)).first() is not None


def mark_done(conn: Connection, batch_key: str, cluster: str, event_count: int) -> None:
    """Inside the transaction that stores the batch's findings; a second mark for the key raises.

    Failed attempts before this success are forgotten; a dead letter's record stays.
    """
    conn.execute(
        insert(_done).values(batch_key=batch_key, cluster=cluster, event_count=event_count, done_at_ms=now_ms())
    )
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


def mark_dead(engine: Engine, batch_key: str, cluster: str, event_count: int) -> None:
    """The batch went to the dead-letter subject: record when, and mark it done so no worker retries it."""
    with engine.begin() as conn:
        conn.execute(update(_failures).where(_failures.c.batch_key == batch_key).values(dead_at_ms=now_ms()))
        if not is_done(conn, batch_key):
            conn.execute(
                insert(_done).values(
                    batch_key=batch_key, cluster=cluster, event_count=event_count, done_at_ms=now_ms()
                )
            )


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
    done = conn.execute(select(func.count(), func.coalesce(func.sum(_done.c.event_count), 0))).one()
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


def prune(engine: Engine, older_than_ms: int, limit: int = 5000) -> int:
    """Forget done marks older than the bus's duplicate horizon, a bounded number per transaction."""
    with engine.begin() as conn:
        keys = select(_done.c.batch_key).where(_done.c.done_at_ms < older_than_ms).limit(limit).scalar_subquery()
        result = conn.execute(delete(_done).where(_done.c.batch_key.in_(keys)))
        return int(result.rowcount)

"""The durable webhook spool: audit batches between acknowledgement and detection.

Why a table and not a file: the spool must survive ``kill -9`` between the moment the API server gets its
200 and the moment detection has committed the batch's findings. A row committed in the store gives that
for free on both backends — SQLite runs with ``synchronous=FULL`` (the WAL is fsynced on every commit) and
PostgreSQL commits are durable — and it lets the drainer mark a batch done in the same kind of transaction
that writes its findings. Batches keep the request body as received (after gunzip) so a later, better
decoder or detector can replay them; drained batches are pruned after a retention period, and oldest
first beyond a size cap, in small steps.

The body lives in ``kg_spool_bodies`` under the row's id, written in the same transaction as the row and
deleted with it: the row that the drainer marks done and every backlog count reads stays a few dozen
bytes (see :data:`kubeguard.store.schema.spool_bodies`).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, case, delete, func, insert, select, update

from kubeguard.store import schema
from kubeguard.store.database import checkpoint_sqlite, now_ms
from kubeguard.store.dialect import insert_if_absent
from kubeguard.store.writer import writer_lock

#: Rows deleted per pruning transaction: small, so appends never wait long behind a prune.
PRUNE_STEP = 200

_table = schema.spool
_body_table = schema.spool_bodies


@dataclass(slots=True, frozen=True)
class Batch:
    id: int
    cluster: str
    event_count: int
    body: bytes


@dataclass(slots=True, frozen=True)
class SpoolEntry:
    """A batch to append: what :meth:`Spool.append_many` stores as one row."""

    cluster: str
    body: bytes
    event_count: int


@dataclass(slots=True, frozen=True)
class SpoolDepth:
    pending_batches: int
    pending_events: int
    pending_bytes: int = 0
    #: When the oldest pending batch was received (epoch ms), or None with nothing pending.
    oldest_received_ms: int | None = None

    def lag_seconds(self, now: int | None = None) -> float:
        """How long the oldest acknowledged batch has waited for detection."""
        if self.oldest_received_ms is None:
            return 0.0
        return max(0.0, ((now if now is not None else now_ms()) - self.oldest_received_ms) / 1000)


def _insert(conn: Connection, entries: list[SpoolEntry], received_ms: int) -> list[int]:
    """The batches' spool rows and bodies, in ``conn``'s transaction; their ids, in order."""
    ids = []
    for entry in entries:
        result = conn.execute(
            insert(_table).values(
                cluster=entry.cluster,
                received_at_ms=received_ms,
                event_count=entry.event_count,
                body_bytes=len(entry.body),
            )
        )
        ids.append(int(result.inserted_primary_key[0]))
    conn.execute(insert(_body_table), [{"id": id_, "body": e.body} for id_, e in zip(ids, entries, strict=True)])
    return ids


class Spool:
    """Append batches durably; hand them to the drainer in arrival order; mark them done."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        #: On SQLite, appends queue behind the process's other writers (the drainer's detection groups) on
        #: the engine's writer lock instead of in SQLite's busy handler (:mod:`kubeguard.store.writer`).
        self._writing = writer_lock(engine) if engine.dialect.name == "sqlite" else contextlib.nullcontext()

    def append(
        self, cluster: str, body: bytes, event_count: int, also: Callable[[Connection], None] | None = None
    ) -> int:
        """Store one batch; when this returns, the batch survives a crash. Returns its id.

        ``also`` writes in the same transaction (a live source's cursor): either the batch and the position
        that skips it are both stored, or neither is and the source reads the batch again.
        """
        with self._writing, self._engine.begin() as conn:
            (spool_id,) = _insert(conn, [SpoolEntry(cluster, body, event_count)], now_ms())
            if also is not None:
                also(conn)
            return spool_id

    def append_many(self, entries: list[SpoolEntry]) -> list[int]:
        """Store several batches in one transaction, one row each (group commit); their ids, in order.

        One commit, so one fsync, for all of them: when this returns every batch survives a crash, and when
        it raises none was stored.
        """
        received = now_ms()
        with self._writing, self._engine.begin() as conn:
            return _insert(conn, entries, received)

    @property
    def dialect(self) -> str:
        """The store's dialect name (``sqlite``, ``postgresql``)."""
        return self._engine.dialect.name

    def checkpoint(self) -> tuple[int, int] | None:
        """Move the SQLite WAL's frames into the database file (nothing on PostgreSQL); run after detection
        groups (:mod:`kubeguard.api.ingest.checkpointer`) so webhook commits never do (:func:`checkpoint_sqlite`)."""
        return checkpoint_sqlite(self._engine)

    def pending(self, limit: int) -> list[Batch]:
        """The oldest ``limit`` batches not yet drained."""
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(_table.c.id, _table.c.cluster, _table.c.event_count)
                .where(_table.c.done_at_ms.is_(None))
                .order_by(_table.c.id)
                .limit(limit)
            ).all()
            bodies = self._bodies(conn, [row.id for row in rows]) if rows else {}
            return [Batch(row.id, row.cluster, row.event_count, bodies[row.id]) for row in rows]

    def pending_group(
        self,
        *,
        max_batches: int,
        max_events: int,
        max_bytes: int,
        without_body: Callable[[int], bool] | None = None,
    ) -> list[Batch]:
        """The oldest batches not yet drained, as many as fit the bounds (always at least one if any waits).

        The bounds are checked on the rows' sizes before any body is read, so a group never loads more than
        ``max_bytes`` of bodies (beyond a single batch larger than that). Batches for which
        ``without_body(id)`` is true come with an empty body, unread (the caller has them decoded already).
        """
        with self._engine.connect() as conn:
            heads = conn.execute(
                select(_table.c.id, _table.c.cluster, _table.c.event_count, _table.c.body_bytes)
                .where(_table.c.done_at_ms.is_(None))
                .order_by(_table.c.id)
                .limit(max_batches)
            ).all()
            chosen: list[Any] = []
            events = size = 0
            for row in heads:
                events += row.event_count
                size += row.body_bytes
                if chosen and (events > max_events or size > max_bytes):
                    break
                chosen.append(row)
            unread = [row.id for row in chosen if without_body is None or not without_body(row.id)]
            bodies = self._bodies(conn, unread) if unread else {}
            return [Batch(row.id, row.cluster, row.event_count, bodies.get(row.id, b"")) for row in chosen]

    def body(self, batch_id: int) -> bytes:
        """One batch's body as stored."""
        with self._engine.connect() as conn:
            return self._bodies(conn, [batch_id])[batch_id]

    @staticmethod
    def _bodies(conn: Connection, ids: list[int]) -> dict[int, bytes]:
        rows = conn.execute(select(_body_table.c.id, _body_table.c.body).where(_body_table.c.id.in_(ids)))
        return {row.id: bytes(row.body) for row in rows}

    @staticmethod
    def mark_done(conn: Connection, batch_id: int, error: str | None = None) -> None:
        """Mark a batch drained, inside the caller's transaction (the one that stored its findings)."""
        values = {"done_at_ms": now_ms(), "error": error[:2000] if error else None}
        conn.execute(update(_table).where(_table.c.id == batch_id).values(**values))

    @staticmethod
    def mark_many_done(conn: Connection, batch_ids: list[int]) -> None:
        """Mark several batches drained in one statement, inside the transaction that stored their findings."""
        conn.execute(update(_table).where(_table.c.id.in_(batch_ids)).values(done_at_ms=now_ms(), error=None))

    def fail(self, batch_id: int, done_mark: str, cluster: str, error: str) -> None:
        """Give up on a batch detection keeps failing on: done, with the reason, and its done mark taken."""
        with self._writing, self._engine.begin() as conn:
            mark = {
                "batch_id": done_mark,
                "cluster": cluster,
                "done_at_ms": now_ms(),
                "events": 0,
                "rejected": 0,
            }
            insert_if_absent(conn, schema.batches, mark)
            self.mark_done(conn, batch_id, error)

    def depth(self) -> SpoolDepth:
        with self._engine.connect() as conn:
            row = conn.execute(
                select(
                    func.count(),
                    func.coalesce(func.sum(_table.c.event_count), 0),
                    func.coalesce(func.sum(_table.c.body_bytes), 0),
                    func.min(_table.c.received_at_ms),
                ).where(_table.c.done_at_ms.is_(None))
            ).one()
            return SpoolDepth(
                pending_batches=int(row[0]),
                pending_events=int(row[1]),
                pending_bytes=int(row[2]),
                oldest_received_ms=int(row[3]) if row[3] is not None else None,
            )

    def totals(self) -> dict[str, int]:
        """Batches and events received and drained since the oldest retained batch.

        One statement, so the received, drained and pending figures are one snapshot: read apart, a batch
        finishing between the reads showed as neither pending nor done.
        """
        pending = _table.c.done_at_ms.is_(None)
        with self._engine.connect() as conn:
            row = conn.execute(
                select(
                    func.count(),
                    func.coalesce(func.sum(_table.c.event_count), 0),
                    func.count(_table.c.done_at_ms),
                    func.count(_table.c.error),
                    func.coalesce(func.sum(case((pending, _table.c.event_count), else_=0)), 0),
                    func.coalesce(func.sum(case((pending, _table.c.body_bytes), else_=0)), 0),
                    func.min(case((pending, _table.c.received_at_ms), else_=None)),
                )
            ).one()
        depth = SpoolDepth(
            pending_batches=int(row[0]) - int(row[2]),
            pending_events=int(row[4]),
            pending_bytes=int(row[5]),
            oldest_received_ms=int(row[6]) if row[6] is not None else None,
        )
        return {
            "batches": int(row[0]),
            "events": int(row[1]),
            "batches_done": int(row[2]),
            "batches_failed": int(row[3]),
            "batches_pending": depth.pending_batches,
            "events_pending": depth.pending_events,
            "bytes_pending": depth.pending_bytes,
            "lag_seconds": round(depth.lag_seconds(), 3),
        }

    def prune(self, older_than_ms: int, *, max_bytes: int | None = None, stop: threading.Event | None = None) -> int:
        """Delete drained batches finished before ``older_than_ms`` and, while the drained ones hold more
        than ``max_bytes``, the oldest drained ones; :data:`PRUNE_STEP` rows per transaction. Returns how many.
        """
        pruned = 0
        expired = _table.c.done_at_ms.is_not(None) & (_table.c.done_at_ms < older_than_ms)
        while stop is None or not stop.is_set():
            step = self._delete_step(expired)
            pruned += step
            if step < PRUNE_STEP:
                break
        if max_bytes is None:
            return pruned
        while stop is None or not stop.is_set():
            with self._engine.connect() as conn:
                kept = conn.execute(
                    select(func.coalesce(func.sum(_table.c.body_bytes), 0)).where(_table.c.done_at_ms.is_not(None))
                ).scalar_one()
            if int(kept) <= max_bytes:
                break
            step = self._delete_step(_table.c.done_at_ms.is_not(None))
            pruned += step
            if not step:
                break
        return pruned

    def _delete_step(self, condition: Any) -> int:
        """Delete the oldest :data:`PRUNE_STEP` rows meeting ``condition``, with their bodies, in one short
        transaction."""
        with self._writing, self._engine.begin() as conn:
            doomed = list(conn.scalars(select(_table.c.id).where(condition).order_by(_table.c.id).limit(PRUNE_STEP)))
            if not doomed:
                return 0
            conn.execute(delete(_body_table).where(_body_table.c.id.in_(doomed)))
            return int(conn.execute(delete(_table).where(_table.c.id.in_(doomed))).rowcount or 0)

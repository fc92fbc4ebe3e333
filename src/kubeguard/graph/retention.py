"""Keep the activity store bounded: by age (default 90 days) and by the number of roll-up rows.

Age is measured from the newest activity in the store rather than from the wall clock, so importing last
quarter's logs keeps them instead of pruning them on arrival; on a live service the two are the same. It
is measured per cluster: one cluster's logs imported from months ago must not be pruned because another
cluster reports today. Entities and edges carry no cluster, so they are kept while any cluster's kept
activity may name them (the oldest cluster's cutoff). When the roll-ups exceed their row budget, whole
oldest hours go first, whatever their cluster.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, delete, exists, func, select

from kubeguard.graph import schema as tables

DAY_MS = 86_400_000


@dataclass(slots=True, frozen=True)
class Retention:
    days: float = 90.0
    max_activity_rows: int = 20_000_000


@dataclass(slots=True)
class Pruned:
    activity: int = 0
    edges: int = 0
    entities: int = 0
    first_seen: int = 0

    @property
    def total(self) -> int:
        return self.activity + self.edges + self.entities + self.first_seen


def prune(conn: Connection, retention: Retention) -> Pruned:
    pruned = Pruned()
    if conn.dialect.name == "postgresql":
        # A shape goes when no hour counts it. A worker's flush in flight may be counting a new hour of a
        # shape whose old hours go here, and its uncommitted count is invisible to this transaction: the
        # shape would be deleted under it, stranding the count. Every flush writes the shapes it counts
        # (ROW EXCLUSIVE until it commits), so this lock waits for flushes in flight and holds new ones back
        # until the prune commits. It is taken first, before any row lock a flush could be waiting on.
        conn.exec_driver_sql(f"LOCK TABLE {tables.activity_shapes.name} IN SHARE ROW EXCLUSIVE MODE")
    counts, shapes = tables.activity_counts, tables.activity_shapes
    edges, entities, first = tables.edges, tables.entities, tables.first_seen
    keep_ms = int(retention.days * DAY_MS)
    size_cutoff = _size_cutoff(conn, retention.max_activity_rows)
    cutoffs = {cluster: max(newest - keep_ms, size_cutoff) for cluster, newest in _newest_hours(conn).items()}
    if cutoffs:
        shared = min(cutoffs.values())
    else:
        newest = conn.execute(select(func.max(entities.c.last_seen_ms))).scalar()
        if newest is None:
            return pruned
        shared = max(int(newest) - keep_ms, size_cutoff)
    # Per cluster: the counts are keyed by hour, so each delete walks only the hours it removes.
    for cluster, cutoff in cutoffs.items():
        of_cluster = select(shapes.c.key).where(shapes.c.cluster == cluster)
        deleted = conn.execute(delete(counts).where(counts.c.hour_ms < cutoff, counts.c.shape.in_(of_cluster)))
        pruned.activity += deleted.rowcount or 0
    if pruned.activity:
        # A shape no hour counts any more goes too (one probe of the counts' shape index each).
        conn.execute(delete(shapes).where(~exists().where(counts.c.shape == shapes.c.key)))
    pruned.edges = conn.execute(delete(edges).where(edges.c.last_ms < shared)).rowcount or 0
    pruned.entities = conn.execute(delete(entities).where(entities.c.last_seen_ms < shared)).rowcount or 0
    # A first sighting stays while its subject is remembered: forgetting it would make old habits "new".
    remembered = select(entities.c.key).where(entities.c.kind == "subject")
    pruned.first_seen = conn.execute(delete(first).where(first.c.subject.not_in(remembered))).rowcount or 0
    return pruned


def _newest_hours(conn: Connection) -> dict[str, int]:
    """Each cluster's newest roll-up hour: one seek on (shape, hour) per shape of the cluster, far fewer
    than its hourly rows."""
    counts, shapes = tables.activity_counts, tables.activity_shapes
    clusters = conn.execute(select(shapes.c.cluster).distinct()).scalars().all()
    newest_of_shape = select(func.max(counts.c.hour_ms)).where(counts.c.shape == shapes.c.key).scalar_subquery()
    found = {}
    for cluster in clusters:
        newest = conn.execute(select(func.max(newest_of_shape)).where(shapes.c.cluster == cluster)).scalar()
        if newest is not None:
            found[cluster] = int(newest)
    return found


def _size_cutoff(conn: Connection, max_rows: int) -> int:
    """The oldest hour to keep so that at most ``max_rows`` roll-up rows remain (0: no cut needed)."""
    table = tables.activity_counts
    total = conn.execute(select(func.count()).select_from(table)).scalar() or 0
    if total <= max_rows:
        return 0
    per_hour = conn.execute(
        select(table.c.hour_ms, func.count()).group_by(table.c.hour_ms).order_by(table.c.hour_ms.desc())
    )
    kept = 0
    for hour, rows in per_hour:
        kept += rows
        if kept > max_rows:
            return int(hour) + 1
    return 0

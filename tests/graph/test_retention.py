"""The activity store stays bounded: by age from its newest activity, and by a budget of roll-up rows."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import exists, func, select

from graph.auditlog import event
from kubeguard.graph import kinds, queries
from kubeguard.graph import schema as tables
from kubeguard.graph.recorder import ActivityRecorder
from kubeguard.graph.retention import Retention, prune


def _store(engine, events):
    recorder = ActivityRecorder()
    for item in events:
        recorder.observe(item)
    with engine.begin() as conn:
        recorder.flush(conn)


def _call(day: str, clock: str, user: str, cluster: str = "lab"):
    return event(clock, user=user, ip="203.0.113.5", agent="kubectl", verb="get", resource="pods",
                 namespace="dev", code=200, day=day, cluster=cluster)


def test_age_is_measured_from_the_newest_activity(engine):
    _store(engine, [_call("2026-01-01", "10:00", "old-user"), _call("2026-05-01", "10:00", "new-user"),
                    _call("2026-05-01", "11:00", "new-user")])
    with engine.begin() as conn:
        pruned = prune(conn, Retention(days=90))
    with engine.connect() as conn:
        assert queries.entity(conn, kinds.SUBJECT, "old-user") is None
        assert queries.entity(conn, kinds.SUBJECT, "new-user")["events"] == 2
        assert conn.execute(select(func.sum(tables.activity.c["count"]))).scalar() == 2
        pairs = conn.execute(select(tables.first_seen.c.subject).distinct()).scalars().all()
    assert pruned.activity == 1 and pairs == ["new-user"]


def test_age_is_measured_per_cluster(engine):
    """Last January's logs of one cluster, imported beside another cluster's of today, are kept; within
    the January cluster the activity older than its own 90 days still goes."""
    _store(engine, [_call("2025-09-01", "10:00", "gone", "archive"), _call("2026-01-10", "10:00", "erin", "archive"),
                    _call("2026-11-27", "10:00", "admin", "lab")])
    with engine.begin() as conn:
        pruned = prune(conn, Retention(days=90))
    with engine.connect() as conn:
        assert queries.entity(conn, kinds.SUBJECT, "erin")["events"] == 1
        assert queries.entity(conn, kinds.SUBJECT, "admin")["events"] == 1
        assert queries.entity(conn, kinds.SUBJECT, "gone") is None
        kept = conn.execute(select(tables.activity.c.cluster, tables.activity.c.subject)
                            .order_by(tables.activity.c.subject)).all()
    assert pruned.activity == 1
    assert [tuple(row) for row in kept] == [("lab", "admin"), ("archive", "erin")]


def test_the_row_budget_drops_the_oldest_hours_first(engine):
    _store(engine, [_call("2026-05-01", f"{hour:02d}:00", "alice") for hour in range(6)])
    with engine.begin() as conn:
        pruned = prune(conn, Retention(days=90, max_activity_rows=2))
    with engine.connect() as conn:
        hours = conn.execute(select(tables.activity.c.hour_ms).order_by(tables.activity.c.hour_ms)).scalars().all()
    assert pruned.activity == 4
    assert [queries.iso(hour) for hour in hours] == ["2026-05-01T04:00:00Z", "2026-05-01T05:00:00Z"]


def test_pruning_never_strands_the_counts_of_a_flush_in_flight(engine):
    """A worker's flush counts a new hour of a shape whose old hours retention is removing: whichever
    commits first, the shape stays while the flush's count needs it (PostgreSQL: several writers)."""
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite has one writer at a time: a prune cannot run while a flush is open")
    _store(engine, [_call("2026-01-01", "10:00", "alice"), _call("2026-05-01", "10:00", "bob")])
    flush = engine.connect()
    transaction = flush.begin()
    recorder = ActivityRecorder()
    recorder.observe(_call("2026-05-01", "11:00", "alice"))  # alice's shape again, in an hour retention keeps
    recorder.flush(flush)
    pruned: list = []
    pruning = threading.Thread(target=lambda: pruned.append(_prune(engine)))
    pruning.start()
    pruning.join(timeout=1.0)  # it either waits for the flush (the fix) or finishes while the flush is open
    transaction.commit()
    flush.close()
    pruning.join(timeout=30)
    assert not pruning.is_alive() and pruned
    with engine.connect() as conn:
        stranded = conn.execute(
            select(func.count()).select_from(tables.activity_counts).where(
                ~exists().where(tables.activity_shapes.c.key == tables.activity_counts.c.shape))
        ).scalar()
        alice = conn.execute(select(func.sum(tables.activity.c["count"])).where(
            tables.activity.c.subject == "alice")).scalar()
    assert stranded == 0
    assert alice == 1  # January's hour went; May's, counted while the prune ran, is there


def _prune(engine):
    with engine.begin() as conn:
        return prune(conn, Retention(days=90))

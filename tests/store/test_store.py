"""The store behaves the same on SQLite and PostgreSQL."""

from __future__ import annotations

import copy
import threading

from sqlalchemy import select

from kubeguard.store import detectors, filters, findings, schema
from kubeguard.store.database import migrate
from kubeguard.store.recorder import FindingRecorder
from kubeguard.store.spool import Spool
from kubeguard.store.state import SqlState


def make_finding(finding_id="a" * 32, *, detector="d" * 32, seen="2024-05-14T09:31:07.412Z", severity=5):
    return {
        "id": finding_id,
        "type": "Discovery:Kubernetes/MaliciousIPCaller.Custom",
        "severity": severity,
        "accountId": "111122223333",
        "region": "eu-west-1",
        "createdAt": seen,
        "updatedAt": seen,
        "resource": {"resourceType": "EKSCluster", "eksClusterDetails": {"name": "prod"}},
        "service": {
            "detectorId": detector,
            "archived": False,
            "count": 1,
            "eventFirstSeen": seen,
            "eventLastSeen": seen,
            "action": {"kubernetesApiCallAction": {"sourceIPs": ["198.51.100.23", "10.0.0.1"]}},
        },
    }


def test_migrations_are_recorded_and_idempotent(engine):
    assert migrate(engine) == migrate(engine) == 1
    with engine.connect() as conn:
        assert conn.execute(select(schema.schema_version.c.version)).scalars().all() == [1]


def test_same_id_aggregates_instead_of_duplicating(engine):
    first = make_finding(seen="2024-05-14T09:31:07.412Z")
    later = make_finding(seen="2024-05-14T10:02:55.019Z", severity=8)
    with engine.begin() as conn:
        assert findings.upsert(conn, copy.deepcopy(first)).created
        merged = findings.upsert(conn, later)
    assert not merged.created
    assert merged.finding["service"]["count"] == 2
    assert merged.finding["service"]["eventFirstSeen"] == "2024-05-14T09:31:07.412Z"
    assert merged.finding["service"]["eventLastSeen"] == "2024-05-14T10:02:55.019Z"
    assert merged.finding["severity"] == 8
    with engine.connect() as conn:
        assert findings.count(conn) == 1
        stored = findings.get_many(conn, "d" * 32, ["a" * 32])["a" * 32]
    assert stored == merged.finding


def test_scan_prefilters_by_indexed_columns_without_losing_matches(engine):
    with engine.begin() as conn:
        findings.upsert(conn, make_finding("1" * 32, severity=2))
        findings.upsert(conn, make_finding("2" * 32, severity=8))
    criterion = {"severity": {"gte": 7}, "type": {"eq": ["Discovery:Kubernetes/MaliciousIPCaller.Custom"]}}
    with engine.connect() as conn:
        assert [f["id"] for f in findings.scan(conn, "d" * 32, criterion)] == ["2" * 32]


def test_first_seen_is_true_once_per_key(engine):
    state = SqlState(engine)
    assert state.first_seen("exec", "alice|pod-a")
    assert not state.first_seen("exec", "alice|pod-a")
    assert state.first_seen("exec", "alice|pod-b")
    assert state.first_seen("x" * 300, "k" * 2000)
    assert not state.first_seen("x" * 300, "k" * 2000)


def test_first_seen_concurrent_callers_agree_on_one_winner(engine):
    state = SqlState(engine)
    results: list[bool] = []
    threads = [threading.Thread(target=lambda: results.append(state.first_seen("s", "k"))) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [False] * 7 + [True]


def test_spool_hands_out_batches_in_order_until_done(engine):
    spool = Spool(engine)
    first = spool.append("prod", b'{"kind":"EventList","items":[]}', 3)
    second = spool.append("dev", b"[]", 2)
    assert [b.id for b in spool.pending(10)] == [first, second]
    assert spool.depth().pending_events == 5
    with engine.begin() as conn:
        Spool.mark_done(conn, first)
    assert [b.id for b in spool.pending(10)] == [second]
    totals = spool.totals()
    assert totals["events"] == 5 and totals["batches_done"] == 1 and totals["events_pending"] == 2


def test_archive_filter_suppresses_and_is_not_published(engine):
    published = []
    with engine.begin() as conn:
        detector_id = detectors.ensure_default(conn, "d" * 32)
        filters.create(
            conn,
            filters.FilterRecord(
                detector_id,
                "quiet-prod",
                "",
                "ARCHIVE",
                1,
                {"resource.eksClusterDetails.name": {"matches": ["pro?"]}},
                {},
                1,
                0,
                0,
            ),
        )
    recorder = FindingRecorder(engine, published.append)
    [stored] = recorder.record([make_finding()])
    assert stored.finding["service"]["archived"] is True
    assert published == []


def test_a_higher_ranked_noop_filter_wins_over_archive(engine):
    published = []
    with engine.begin() as conn:
        detector_id = detectors.ensure_default(conn, "d" * 32)
        for rank, action in ((1, "NOOP"), (2, "ARCHIVE")):
            filters.create(
                conn,
                filters.FilterRecord(detector_id, f"f{rank}x", "", action, rank, {"severity": {"gte": 1}}, {}, 1, 0, 0),
            )
    FindingRecorder(engine, published.append).record([make_finding()])
    assert len(published) == 1 and published[0]["service"]["archived"] is False

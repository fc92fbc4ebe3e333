"""The store behaves the same on SQLite and PostgreSQL."""

from __future__ import annotations

import copy
import threading
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, select, text
from sqlalchemy.exc import DBAPIError

from kubeguard.audit.decode import decode_bytes
from kubeguard.config import Settings
from kubeguard.pipeline import Pipeline
from kubeguard.store import detectors, filters, findings, schema
from kubeguard.store.database import MIGRATIONS, migrate, open_engine
from kubeguard.store.recorder import FindingRecorder
from kubeguard.store.spool import Spool, SpoolEntry
from kubeguard.store.state import SqlState
from store.databases import DIALECTS, database_url


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
    latest = MIGRATIONS[-1][0]
    assert migrate(engine) == migrate(engine) == latest
    with engine.connect() as conn:
        versions = conn.execute(select(schema.schema_version.c.version)).scalars().all()
    assert sorted(versions) == [number for number, _ in MIGRATIONS]


def _shape(engine) -> dict:
    """Tables with their columns (name, type, nullability) and indexes (columns, uniqueness), as stored."""
    with engine.connect() as conn:
        found = inspect(conn)
        return {
            table: (
                sorted((c["name"], str(c["type"]), c["nullable"]) for c in found.get_columns(table)),
                sorted((tuple(i["column_names"]), bool(i["unique"])) for i in found.get_indexes(table)),
                sorted(tuple(u["column_names"]) for u in found.get_unique_constraints(table)),
                found.get_pk_constraint(table)["constrained_columns"],
            )
            for table in found.get_table_names()
            if table != "unrelated"
        }


def _triggers(engine) -> list[str]:
    """The store's trigger names (the finding counts are kept by triggers)."""
    query = (
        "SELECT DISTINCT trigger_name FROM information_schema.triggers WHERE trigger_schema = current_schema()"
        if engine.dialect.name == "postgresql"
        else "SELECT name FROM sqlite_master WHERE type = 'trigger'"
    )
    with engine.connect() as conn:
        return sorted(conn.execute(text(query)).scalars().all())


@pytest.mark.parametrize("dialect", DIALECTS)
def test_a_new_store_created_at_once_matches_one_migrated_step_by_step(dialect, tmp_path):
    """A store without tables is created at the latest version in one go; one with any table (here an
    unrelated one) goes through every migration. Both end with the same schema and version records."""
    shapes = {}
    for name, unrelated in (("fresh", False), ("stepwise", True)):
        (tmp_path / name).mkdir()
        with database_url(dialect, tmp_path / name) as url:
            if unrelated:
                bare = create_engine(url)
                with bare.begin() as conn:
                    conn.execute(text("CREATE TABLE unrelated (id INTEGER)"))
                bare.dispose()
            engine = open_engine(url)
            shapes[name] = _shape(engine)
            shapes[name]["triggers"] = _triggers(engine)
            with engine.connect() as conn:
                versions = conn.execute(select(schema.schema_version.c.version)).scalars().all()
            engine.dispose()
            assert sorted(versions) == [number for number, _ in MIGRATIONS], name
    assert {"kg_activity", "kg_findings", "kg_schema_version"} <= set(shapes["fresh"])
    assert shapes["fresh"]["triggers"], "a new store keeps its finding counts by triggers"
    assert shapes["fresh"] == shapes["stepwise"]


def test_a_version_1_store_gains_the_blobs_table_on_upgrade(engine):
    with engine.begin() as conn:
        schema.blobs.drop(conn, checkfirst=True)
        conn.execute(schema.schema_version.delete().where(schema.schema_version.c.version > 1))
    assert migrate(engine) == MIGRATIONS[-1][0]
    SqlState(engine).put_blob("anomaly.baselines", b"\x00\x01")
    assert SqlState(engine).get_blob("anomaly.baselines") == b"\x00\x01"


def test_a_version_2_store_gains_the_sinks_outbox_on_upgrade(engine):
    from kubeguard.sinks import outbox

    with engine.begin() as conn:
        schema.outbox.drop(conn, checkfirst=True)
        schema.publishing_destinations.drop(conn, checkfirst=True)
        conn.execute(schema.schema_version.delete().where(schema.schema_version.c.version > 2))
    assert migrate(engine) == MIGRATIONS[-1][0]
    with engine.begin() as conn:
        outbox.add(conn, "slack", [{"id": "f1"}], now_ms=1)
        assert outbox.depth(conn, "slack") == 1


def test_a_version_2_store_gains_the_rule_associations_table_on_upgrade(engine):
    from kubeguard.store import rule_associations

    with engine.begin() as conn:
        schema.rule_associations.drop(conn, checkfirst=True)
        conn.execute(schema.schema_version.delete().where(schema.schema_version.c.version > 2))
    assert migrate(engine) == MIGRATIONS[-1][0]
    with engine.begin() as conn:
        association = rule_associations.create(conn, "some-rule", "DRY_RUN", {"team": "sec"}, None)
    with engine.begin() as conn:
        record = rule_associations.get(conn, association)
    assert record is not None and (record.rule_id, record.mode, record.tags) == (
        "some-rule",
        "DRY_RUN",
        {"team": "sec"},
    )


def test_seen_and_forget_agree_with_first_seen_across_instances(engine):
    writer, reader = SqlState(engine), SqlState(engine)
    assert reader.seen("rbac.wildcard-roles", "prod/ClusterRole//god") is False
    assert writer.first_seen("rbac.wildcard-roles", "prod/ClusterRole//god") is True
    assert reader.seen("rbac.wildcard-roles", "prod/ClusterRole//god") is True
    writer.forget("rbac.wildcard-roles", "prod/ClusterRole//god")
    assert SqlState(engine).seen("rbac.wildcard-roles", "prod/ClusterRole//god") is False
    assert writer.first_seen("rbac.wildcard-roles", "prod/ClusterRole//god") is True


def test_blobs_are_replaced_whole_and_absent_ones_are_none(engine):
    state = SqlState(engine)
    assert state.get_blob("anomaly.baselines") is None
    state.put_blob("anomaly.baselines", b"first")
    state.put_blob("anomaly.baselines", b"second" * 1000)
    assert SqlState(engine).get_blob("anomaly.baselines") == b"second" * 1000


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


def test_a_group_of_batches_is_stored_in_one_transaction_one_row_each_or_not_at_all(engine):
    spool = Spool(engine)
    ids = spool.append_many([SpoolEntry("prod", b"[1]", 1), SpoolEntry("dev", b"[2, 3]", 2)])
    assert [(b.id, b.cluster, b.event_count, b.body) for b in spool.pending(10)] == [
        (ids[0], "prod", 1, b"[1]"),
        (ids[1], "dev", 2, b"[2, 3]"),
    ]
    # A row that cannot be stored (no cluster) fails the whole group: the first row is not kept either.
    with pytest.raises(DBAPIError):
        spool.append_many([SpoolEntry("prod", b"[4]", 1), SpoolEntry(None, b"[5]", 1)])  # type: ignore[arg-type]
    assert [b.id for b in spool.pending(10)] == ids


def test_spool_bodies_are_compressed_with_lz4_on_postgresql(engine):
    if engine.dialect.name != "postgresql":
        pytest.skip("compression of large values is PostgreSQL's")
    with engine.connect() as conn:
        method = conn.execute(
            text("SELECT attcompression FROM pg_attribute WHERE attrelid = 'kg_spool_bodies'::regclass AND attname = 'body'")
        ).scalar_one()
    assert method == "l"


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


def test_anomaly_baselines_survive_a_restart_through_the_store(engine):
    lab_log = Path(__file__).resolve().parents[2] / "examples" / "lab-audit.jsonl.gz"
    events = decode_bytes(lab_log.read_bytes(), cluster="lab").events
    before = Pipeline(Settings(), SqlState(engine))
    before.process(events)
    before.save_state()
    learned = before.baselines.principal_count("lab")
    assert learned > 5
    after = Pipeline(Settings(), SqlState(engine))
    assert after.baselines.principal_count("lab") == learned
    assert after.baselines.to_bytes() == before.baselines.to_bytes()


def test_a_version_16_store_gains_the_findings_list_sort_indexes_on_upgrade(engine):
    """Schema version 18 adds the findings list's severity and count indexes to a store that has findings."""
    new = ("ix_kg_findings_list_severity", "ix_kg_findings_list_count")
    with engine.begin() as conn:
        findings.upsert(conn, make_finding())
        for name in new:
            conn.execute(text(f"DROP INDEX {name}"))
        conn.execute(schema.schema_version.delete().where(schema.schema_version.c.version > 16))
    with engine.connect() as conn:
        assert not {i["name"] for i in inspect(conn).get_indexes("kg_findings")} & set(new)
    assert migrate(engine) == MIGRATIONS[-1][0]
    with engine.connect() as conn:
        assert set(new) <= {i["name"] for i in inspect(conn).get_indexes("kg_findings")}
        assert list(findings.get_many(conn, "d" * 32, ["a" * 32])) == ["a" * 32]


def test_sqlite_statistics_are_refreshed_when_a_table_grew_tenfold(tmp_path):
    """SQLite plans from ANALYZE's statistics, which only ANALYZE writes: open_engine analyzes a large table
    that has none, or that is ten times the size they say, and leaves it alone otherwise."""
    from kubeguard.store.database import refresh_sqlite_statistics

    url = f"sqlite:///{tmp_path / 'stats.db'}"
    engine = open_engine(url)
    assert refresh_sqlite_statistics(engine) == []  # small tables: the planner's guesses do
    with engine.begin() as conn:
        for number in range(1200):
            findings.upsert(conn, make_finding(f"{number:032x}", severity=2 + number % 7))
    assert refresh_sqlite_statistics(engine) == ["kg_findings"]
    with engine.connect() as conn:
        counted = conn.execute(text("SELECT stat FROM sqlite_stat1 WHERE idx = 'ix_kg_findings_list_count'")).scalar()
    assert counted.split()[0] == "1200"
    assert refresh_sqlite_statistics(engine) == []  # fresh: not again
    engine.dispose()
    reopened = open_engine(url)  # and opening a store that needs none changes nothing
    assert refresh_sqlite_statistics(reopened) == []
    reopened.dispose()

"""Spool bodies live in ``kg_spool_bodies`` (schema version 17): a version 16 store's batches, pending and
drained, keep their bodies through the migration, and the narrow row is what the drainer marks done."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, Integer, LargeBinary, MetaData, String, Table, Text, inspect, text

from kubeguard.store import schema
from kubeguard.store.database import MIGRATIONS, migrate
from kubeguard.store.spool import Spool, SpoolEntry

_v16 = MetaData()
#: ``kg_spool`` as versions 6 to 16 left it: the body in the row, ``body_bytes`` after it.
OLD_SPOOL = Table(
    "kg_spool",
    _v16,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("cluster", String(255), nullable=False),
    Column("received_at_ms", BigInteger, nullable=False),
    Column("event_count", Integer, nullable=False),
    Column("body", LargeBinary, nullable=False),
    Column("done_at_ms", BigInteger),
    Column("error", Text),
    Column("body_bytes", BigInteger, nullable=False, server_default="0"),
    Index("ix_kg_spool_pending", "done_at_ms", "id"),
)


def _to_version_16(engine, rows: list[dict]) -> None:
    with engine.begin() as conn:
        schema.spool_bodies.drop(conn)
        schema.spool.drop(conn)
        OLD_SPOOL.create(conn)
        for row in rows:  # one by one, so the ids (PostgreSQL's sequence too) advance as the service's did
            conn.execute(OLD_SPOOL.insert().values(**row))
        conn.execute(schema.schema_version.delete().where(schema.schema_version.c.version == 17))


def test_a_version_16_spool_keeps_every_body_pending_or_drained_after_the_split(engine):
    big = b'{"kind":"EventList","items":[' + b",".join([b'{"verb":"get"}'] * 40_000) + b"]}"  # overflow pages
    rows = [
        {"cluster": "prod", "received_at_ms": 1, "event_count": 1, "body": b"[1]", "body_bytes": 3,
         "done_at_ms": 5, "error": None},
        {"cluster": "dev", "received_at_ms": 2, "event_count": 9, "body": b"[2]", "body_bytes": 3,
         "done_at_ms": 6, "error": "ValueError: poison"},
        {"cluster": "prod", "received_at_ms": 3, "event_count": 40_000, "body": big,
         "body_bytes": len(big), "done_at_ms": None, "error": None},
    ]
    _to_version_16(engine, rows)
    assert migrate(engine) == MIGRATIONS[-1][0]
    with engine.connect() as conn:
        assert "body" not in {column["name"] for column in inspect(conn).get_columns("kg_spool")}
        kept = conn.execute(text("SELECT id, cluster, done_at_ms, error, body_bytes FROM kg_spool ORDER BY id")).all()
        bodies = dict(conn.execute(text("SELECT id, body FROM kg_spool_bodies")).all())
    assert [tuple(row) for row in kept] == [
        (1, "prod", 5, None, 3), (2, "dev", 6, "ValueError: poison", 3), (3, "prod", None, None, len(big))
    ]
    assert {key: bytes(value) for key, value in bodies.items()} == {1: b"[1]", 2: b"[2]", 3: big}
    spool = Spool(engine)
    assert [(b.id, b.body) for b in spool.pending(10)] == [(3, big)]
    assert spool.depth().pending_bytes == len(big)
    # New batches continue the ids after the migrated ones, body and row together.
    (new,) = spool.append_many([SpoolEntry("prod", b"[8]", 1)])
    assert new == 4 and spool.body(new) == b"[8]"
    group = spool.pending_group(max_batches=10, max_events=10**6, max_bytes=10**9)
    assert [(b.id, b.body) for b in group] == [(3, big), (new, b"[8]")]


def test_marking_done_and_pruning_keep_rows_and_bodies_together(engine):
    spool = Spool(engine)
    ids = spool.append_many([SpoolEntry("prod", b"[1]", 1), SpoolEntry("prod", b"[2, 3]", 2)])
    with engine.begin() as conn:
        Spool.mark_many_done(conn, ids[:1])
    assert [b.id for b in spool.pending(10)] == ids[1:]
    assert spool.body(ids[0]) == b"[1]"  # drained batches keep their bodies for replay until pruned
    assert spool.prune(older_than_ms=2**62) == 1
    with engine.connect() as conn:
        assert sorted(conn.execute(text("SELECT id FROM kg_spool_bodies")).scalars()) == ids[1:]
        assert sorted(conn.execute(text("SELECT id FROM kg_spool")).scalars()) == ids[1:]


def test_a_failed_append_stores_neither_rows_nor_bodies(engine):
    spool = Spool(engine)
    try:
        spool.append_many([SpoolEntry("prod", b"[4]", 1), SpoolEntry(None, b"[5]", 1)])  # type: ignore[arg-type]
    except Exception:  # noqa: BLE001 - the store's integrity error, whichever dialect
        pass
    else:
        raise AssertionError("a row without a cluster was stored")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM kg_spool_bodies")).scalar() == 0
        assert conn.execute(text("SELECT count(*) FROM kg_spool")).scalar() == 0

"""Schema version 13 moves a version 12 store's roll-up rows (ten strings each) into shapes and hourly counts:
every profile reads the same afterwards. The store here has every other version recorded, 14 included (it
came first on main), as a store that main's version 14 migrated would."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, Integer, MetaData, String, Table, inspect, select, text

from graph.test_rollups import DAY, lab_log, record
from kubeguard.graph import kinds, queries
from kubeguard.graph import schema as tables
from kubeguard.store import schema as store_schema
from kubeguard.store.database import MIGRATIONS, migrate

_v12 = MetaData()
#: ``kg_activity`` as versions 9 to 12 created it.
OLD_ACTIVITY = Table(
    "kg_activity",
    _v12,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("row_key", BigInteger, nullable=False, unique=True),
    Column("hour_ms", BigInteger, nullable=False),
    *(Column(name, String(512), nullable=False) for name in (
        "cluster", "subject", "ip", "user_agent", "verb", "resource", "namespace", "name", "uri", "outcome")),
    Column("count", Integer, nullable=False),
    Index("ix_kg_activity_subject", "subject", "hour_ms"),
    Index("ix_kg_activity_cluster", "cluster", "hour_ms"),
)
ENTITIES = [(kinds.CLUSTER, "lab"), (kinds.SUBJECT, "alice"), (kinds.SUBJECT, "bob"), (kinds.IP, "203.0.113.5"),
            (kinds.NAMESPACE, "lab/dev"), (kinds.POD, "dev/reader"), (kinds.USER_AGENT, "curl/8.5.0")]


def profiles(engine) -> dict:
    with engine.connect() as conn:
        return {entity: queries.profile_activity(conn, *entity, DAY) for entity in ENTITIES}


def test_a_version_12_store_shows_the_same_activity_after_the_split(engine):
    record(engine, lab_log())
    before = profiles(engine)
    with engine.connect() as conn:
        rows = conn.execute(select(tables.activity)).mappings().all()
    assert len(rows) > 5 and before[(kinds.SUBJECT, "alice")]["activity"]["total"] == 7
    # Back to version 12: the old table holding the same rows, split in two to check the counts add up.
    with engine.begin() as conn:
        tables.activity_counts.drop(conn)
        tables.activity_shapes.drop(conn)
        OLD_ACTIVITY.create(conn)
        old = []
        for number, row in enumerate(rows):
            first = row["count"] // 2
            old.append({**row, "row_key": 2 * number, "count": row["count"] - first})
            if first:
                old.append({**row, "row_key": 2 * number + 1, "count": first})
        conn.execute(OLD_ACTIVITY.insert(), old)
        conn.execute(store_schema.schema_version.delete().where(store_schema.schema_version.c.version == 13))
    assert migrate(engine) == MIGRATIONS[-1][0]  # version 14 came first on main: 13 still runs
    assert profiles(engine) == before
    with engine.connect() as conn:
        columns = {column["name"] for column in inspect(conn).get_columns("kg_activity")}
        counted = conn.execute(text("SELECT count(*) FROM kg_activity")).scalar()
        shapes = conn.execute(text("SELECT count(*) FROM kg_activity_shapes")).scalar()
    assert columns == {"hour_ms", "shape", "count"}
    assert counted == len(rows) and shapes <= len(rows)
    # The recorder finds the migrated shapes: a new batch of the same log adds to the same rows.
    record(engine, lab_log())
    with engine.connect() as conn:
        assert queries.series(conn, kinds.SUBJECT, "alice", DAY)["total"] == 14
        assert conn.execute(text("SELECT count(*) FROM kg_activity")).scalar() == counted

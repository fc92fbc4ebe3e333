"""Schema version 13: roll-ups split into shapes (the ten strings, once) and hourly counts (integers).

Up to version 12 every ``kg_activity`` row carried the ten strings of its call and sat in five indexes;
writing them again for every hour was most of what keeping history cost a scan. This step moves a store's
rows into the new layout: each distinct combination becomes a shape, keyed by the digest the recorder
computes for it, and each old row a count of that shape in its hour. Rows are read in blocks, so a large
store is migrated without holding it in memory. A store that already has the new layout (created by
version 9's ``create_all`` from the current tables) is left as it is.
"""

# The SQL here is assembled from this module's constants (table and column names), never from input, so
# string-built SQL is safe and the rule that flags it is off for this file.
# ruff: noqa: S608

from __future__ import annotations

from sqlalchemy import Connection, inspect, text

from kubeguard.graph import schema as tables

_OLD_COLUMNS = ("cluster", "subject", "ip", "user_agent", "verb", "resource", "namespace", "name", "uri", "outcome")
_BLOCK = 5_000
_STAGING = "kg_activity_v13"


def split_activity(conn: Connection) -> None:
    tables.activity_shapes.create(conn, checkfirst=True)
    inspector = inspect(conn)
    if "kg_activity" not in inspector.get_table_names():
        tables.activity_counts.create(conn)
        return
    if "subject" not in {column["name"] for column in inspector.get_columns("kg_activity")}:
        return  # already split
    conn.execute(
        text(f"CREATE TABLE {_STAGING} (hour_ms BIGINT NOT NULL, shape BIGINT NOT NULL, count INTEGER NOT NULL)")
    )
    _copy_rows(conn)
    conn.execute(text("DROP TABLE kg_activity"))
    tables.activity_counts.create(conn)
    conn.execute(
        text(
            f"INSERT INTO kg_activity (hour_ms, shape, count) SELECT hour_ms, shape, sum(count) FROM {_STAGING} "
            "GROUP BY hour_ms, shape"
        )
    )
    conn.execute(text(f"DROP TABLE {_STAGING}"))


def _copy_rows(conn: Connection) -> None:
    """Every old row as a shape (inserted once) and a staged (hour, shape, count)."""
    names = ", ".join(_OLD_COLUMNS)
    placeholders = ", ".join(f":{name}" for name in ("key", *_OLD_COLUMNS))
    insert_shape = text(
        f"INSERT INTO kg_activity_shapes (key, {names}) VALUES ({placeholders}) ON CONFLICT (key) DO NOTHING"
    )
    insert_count = text(f"INSERT INTO {_STAGING} (hour_ms, shape, count) VALUES (:hour_ms, :shape, :count)")
    # Read everything first in blocks of ids, so no cursor is open on the old table while writing.
    last_id = None
    while True:
        query = f"SELECT id, hour_ms, {names}, count FROM kg_activity"
        params = {}
        if last_id is not None:
            query += " WHERE id > :last"
            params["last"] = last_id
        rows = conn.execute(text(query + f" ORDER BY id LIMIT {_BLOCK}"), params).all()
        if not rows:
            return
        last_id = rows[-1][0]
        known: dict[tuple, int] = {}
        for row in rows:
            shape = tuple(row[2:12])
            if shape not in known:
                known[shape] = tables.digest("\x1f".join(shape))
        conn.execute(insert_shape, [dict(zip(("key", *_OLD_COLUMNS), (key, *shape), strict=True))
                                    for shape, key in known.items()])
        conn.execute(insert_count, [{"hour_ms": row[1], "shape": known[tuple(row[2:12])], "count": row[12]}
                                    for row in rows])

"""Schema version 8: the query columns of ``kg_findings``, added and back-filled from each stored body.

A store created at version 8 already has them (``metadata.create_all``); an older one gets them by
``ALTER TABLE ... ADD COLUMN`` (nullable, so both dialects add them without rewriting the table), its new
indexes, and a back-fill that reads bodies in keyset batches so a large store upgrades in bounded memory.
"""

from __future__ import annotations

import orjson
from sqlalchemy import Connection, inspect, select, text, update

from kubeguard.store import schema

_BATCH = 2000


def add_query_columns(conn: Connection) -> None:
    table = schema.findings
    present = {column["name"] for column in inspect(conn).get_columns(table.name)}
    preparer = conn.dialect.identifier_preparer
    for column in table.columns:
        if column.name not in present:
            kind = column.type.compile(dialect=conn.dialect)
            name = preparer.quote(column.name)
            conn.execute(text(f"ALTER TABLE {preparer.quote(table.name)} ADD COLUMN {name} {kind}"))
    for index in table.indexes:
        index.create(conn, checkfirst=True)
    _backfill(conn)


def _backfill(conn: Connection) -> None:
    from kubeguard.store.findings import row_values

    table = schema.findings
    last = ""
    while True:
        rows = conn.execute(
            select(table.c.id, table.c.body)
            .where(table.c.regular.is_(None), table.c.id > last)
            .order_by(table.c.id)
            .limit(_BATCH)
        ).all()
        if not rows:
            return
        for row in rows:
            values = row_values(orjson.loads(row.body))
            # The row keeps its id even if the body's differs; only the derived columns are refreshed.
            values.pop("id")
            values.pop("body")
            conn.execute(update(table).where(table.c.id == row.id).values(**values))
        last = rows[-1].id


def sort_text_by_code_point(conn: Connection) -> None:
    """Schema version 12 on PostgreSQL: the sorted text columns of ``kg_findings`` get ``COLLATE "C"``.

    Keyset pages order by ``column COLLATE "C"`` (Python's order); an index built under the database's
    default collation cannot serve that order, so PostgreSQL sorted every match before returning a page.
    Changing a column's collation rebuilds the indexes on it; the rows are not rewritten. SQLite compares
    text by code point already.
    """
    if conn.dialect.name != "postgresql":
        return
    table = schema.findings
    current = dict(
        conn.execute(
            text(
                "SELECT column_name, collation_name FROM information_schema.columns "
                "WHERE table_schema = current_schema() AND table_name = :table"
            ),
            {"table": table.name},
        ).all()
    )
    preparer = conn.dialect.identifier_preparer
    for column in table.columns:
        kind = column.type.compile(dialect=conn.dialect)
        if 'COLLATE "C"' in kind and current.get(column.name) != "C":
            name = preparer.quote(column.name)
            conn.execute(text(f"ALTER TABLE {preparer.quote(table.name)} ALTER COLUMN {name} TYPE {kind}"))

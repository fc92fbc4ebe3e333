"""Schema version 17: spool bodies move out of ``kg_spool`` into ``kg_spool_bodies``, under the same ids.

Why: on SQLite a record that changes size is rewritten whole, so marking a 0.6 MB batch done wrote its
body again (inside detection's write transaction, which webhook appends wait for), and a query reading
``body_bytes``, stored after the body, walked its overflow pages. Every batch, drained or pending, keeps
its body (replay needs it): the bodies are copied inside the database, then the column is dropped, in
the migration's one transaction. On PostgreSQL the new column is compressed with lz4 as version 11 did
for the old one, set before the copy so the copied bodies are compressed with it too. A store whose
``kg_spool`` has no ``body`` (created by version 1's ``create_all`` from the current tables) only gains
the table.
"""

from __future__ import annotations

from sqlalchemy import Connection, inspect, text
from sqlalchemy.exc import DBAPIError

from kubeguard.store import schema


def split_spool_bodies(conn: Connection) -> None:
    schema.spool_bodies.create(conn, checkfirst=True)
    if conn.dialect.name == "postgresql":
        try:
            with conn.begin_nested():
                conn.execute(text("ALTER TABLE kg_spool_bodies ALTER COLUMN body SET COMPRESSION lz4"))
        except DBAPIError:
            pass  # a server without lz4 keeps pglz
    if "body" not in {column["name"] for column in inspect(conn).get_columns("kg_spool")}:
        return
    conn.execute(text("INSERT INTO kg_spool_bodies (id, body) SELECT id, body FROM kg_spool"))
    conn.execute(text("ALTER TABLE kg_spool DROP COLUMN body"))

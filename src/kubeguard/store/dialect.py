"""The one statement the two dialects spell differently: INSERT ... ON CONFLICT DO NOTHING."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Table
from sqlalchemy.dialects import postgresql, sqlite


def insert_if_absent(conn: Connection, table: Table, values: dict[str, Any]) -> bool:
    """Insert ``values`` unless a row with the same primary key exists; True if a row was inserted.

    ``RETURNING`` tells the outcome on both dialects (psycopg reports no rowcount for this statement).
    """
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    key = next(iter(table.primary_key.columns))
    statement = dialect.insert(table).values(**values).on_conflict_do_nothing().returning(key)
    return conn.execute(statement).first() is not None


def insert_absent(conn: Connection, table: Table, rows: list[dict[str, Any]]) -> set[Any]:
    """Insert each of ``rows`` whose primary key is not stored yet, in one statement, in the order given;
    returns the keys of the rows inserted (those absent from it were there already)."""
    if not rows:
        return set()
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    key = next(iter(table.primary_key.columns))
    statement = dialect.insert(table).values(rows).on_conflict_do_nothing().returning(key)
    return set(conn.scalars(statement))

"""ListFindings, statistics and the native listing computed in SQL, in bounded memory.

Results come back in keyset batches ordered by (sort column, id), so a page costs an index range scan
whatever the store holds, and ``nextToken`` is the position after the last returned finding rather than
an offset. The order is the one the API has always given: findings that have the sort field first, by
(value, id) in the requested direction, then the ones without it by id. Text is ordered by code point
(``COLLATE "C"`` on PostgreSQL, the default on SQLite) as Python orders it.

Criteria translate to SQL (:mod:`kubeguard.store.criteria_sql`); what does not translate is evaluated in
Python on the streamed rows, whose bodies are read in batches bounded in bytes. All of it assumes the
detector's rows are ``regular``; :func:`sql_ready` tells the caller when to use the evaluator instead.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import ColumnElement, Connection, String, and_, func, literal, or_, select

from kubeguard.findings.criteria import matches
from kubeguard.store import schema
from kubeguard.store.criteria_sql import SqlCriterion, translate
from kubeguard.store.finding_columns import FIELD_COLUMNS

_table = schema.findings
#: Keys fetched per keyset query, and the most body text held at once when Python must read bodies.
KEY_BATCH = 500
BODY_BYTES_PER_READ = 8 * 1024 * 1024


def sql_ready(conn: Connection, detector_id: str | None) -> bool:
    """True when every finding of ``detector_id`` (all findings for None) has exact query columns."""
    statement = select(_table.c.id).where(schema.IRREGULAR_FINDING)
    if detector_id is not None:
        statement = statement.where(_table.c.detector_id == detector_id)
    return conn.execute(statement.limit(1)).first() is None


def sortable(attribute: str) -> bool:
    return attribute in FIELD_COLUMNS


@dataclass(frozen=True, slots=True)
class Position:
    """Where a keyset scan stands: in the ``present`` phase at (value, id), or ``absent`` at id."""

    phase: str
    value: Any
    id: str

    def to_json(self) -> list[Any]:
        return [self.phase, self.value, self.id]

    @classmethod
    def from_json(cls, data: Any) -> Position:
        phase, value, last_id = data
        if phase not in ("present", "absent") or not isinstance(last_id, str):
            raise ValueError("bad position")
        if value is not None and not isinstance(value, str | int | float | bool):
            raise ValueError("bad position")
        return cls(phase, value, last_id)


@dataclass(frozen=True, slots=True)
class Order:
    attribute: str
    descending: bool
    #: ListFindings breaks ties by id in the sort's direction; the native listing by ascending id.
    id_descending: bool


def page(
    conn: Connection,
    detector_id: str | None,
    criterion: Mapping[str, Mapping[str, Any]],
    order: Order,
    start: Position | None,
    limit: int,
) -> tuple[list[str], Position | None]:
    """Up to ``limit`` matching ids after ``start``, and the position to continue from (None at the end)."""
    ids: list[str] = []
    last: Position | None = None
    for position, _ in stream(conn, detector_id, criterion, order, start, first_batch=limit + 1):
        if len(ids) == limit:
            return ids, last
        ids.append(position.id)
        last = position
    return ids, None


def _ordered(conn: Connection, column: Any) -> Any:
    if conn.dialect.name == "postgresql" and isinstance(column.type, String):
        return column.collate("C")
    return column


def _after(conn: Connection, column: Any, descending: bool, value: Any) -> ColumnElement[bool]:
    value = literal(value, column.type)  # a bound parameter even for True/False
    column = _ordered(conn, column)
    return column < value if descending else column > value


def stream(
    conn: Connection,
    detector_id: str | None,
    criterion: Mapping[str, Mapping[str, Any]],
    order: Order,
    start: Position | None = None,
    *,
    bodies: bool = False,
    first_batch: int = KEY_BATCH,
) -> Iterator[tuple[Position, dict[str, Any] | None]]:
    """Matching findings in ``order`` after ``start``: (position, finding body or None).

    Bodies are read only when asked for or when part of the criterion has to be evaluated in Python.
    Keys are fetched ``first_batch`` at a time at first (a page asks for one more than it returns), then
    in batches doubling up to ``KEY_BATCH`` when the reader wants more.
    """
    plan = translate(criterion)
    need_bodies = bodies or bool(plan.residual)
    base: list[ColumnElement[bool]] = list(plan.clauses)
    if detector_id is not None:
        base.append(_table.c.detector_id == detector_id)
    sort_column = FIELD_COLUMNS[order.attribute].column
    phase = start.phase if start else "present"
    if phase == "present":
        yield from _phase(conn, plan, base, sort_column, order, start, need_bodies, first_batch)
        start = None
    yield from _phase(conn, plan, base, None, order, start, need_bodies, first_batch)


def _phase(
    conn: Connection,
    plan: SqlCriterion,
    base: list[ColumnElement[bool]],
    sort_column: Any,
    order: Order,
    start: Position | None,
    need_bodies: bool,
    batch: int,
) -> Iterator[tuple[Position, dict[str, Any] | None]]:
    """One keyset phase: rows with the sort value by (value, id), or (``sort_column`` None) rows without it."""
    identifier = _ordered(conn, _table.c.id)
    if sort_column is None:
        phase, column = "absent", FIELD_COLUMNS[order.attribute].column
        where = [*base, column.is_(None)]
        ordering = [identifier]
        value_column = None
    else:
        phase = "present"
        where = [*base, sort_column.is_not(None)]
        sorted_value = _ordered(conn, sort_column)
        ordering = [
            sorted_value.desc() if order.descending else sorted_value,
            identifier.desc() if order.id_descending else identifier,
        ]
        value_column = sort_column
    value, last_id = (start.value, start.id) if start else (None, None)
    columns = [_table.c.id] + ([value_column] if value_column is not None else [])
    if need_bodies:
        columns.append(func.length(_table.c.body).label("body_length"))
    while True:
        statement = select(*columns).where(*where)
        if last_id is not None:
            if value_column is None:
                statement = statement.where(identifier > last_id)
            else:
                statement = statement.where(
                    or_(
                        _after(conn, value_column, order.descending, value),
                        and_(
                            _ordered(conn, value_column) == literal(value, value_column.type),
                            _after(conn, _table.c.id, order.id_descending, last_id),
                        ),
                    )
                )
        rows = conn.execute(statement.order_by(*ordering).limit(batch)).all()
        if not rows:
            return
        for chunk in _body_chunks(rows) if need_bodies else [rows]:
            found = _read(conn, [row.id for row in chunk]) if need_bodies else {}
            for row in chunk:
                row_value = getattr(row, value_column.name) if value_column is not None else None
                body = found.get(row.id)
                if plan.residual and not matches(plan.residual, body or {}):
                    continue
                yield Position(phase, row_value, row.id), body
        if len(rows) < batch:
            return
        batch = min(KEY_BATCH, batch * 2)
        value = getattr(rows[-1], value_column.name) if value_column is not None else None
        last_id = rows[-1].id


def _body_chunks(rows: list[Any]) -> Iterator[list[Any]]:
    """``rows`` in runs whose bodies total at most ``BODY_BYTES_PER_READ`` characters (or one row)."""
    chunk: list[Any] = []
    size = 0
    for row in rows:
        if chunk and size + row.body_length > BODY_BYTES_PER_READ:
            yield chunk
            chunk, size = [], 0
        chunk.append(row)
        size += row.body_length
    if chunk:
        yield chunk


def _read(conn: Connection, ids: list[str]) -> dict[str, dict[str, Any]]:
    rows = conn.execute(select(_table.c.id, _table.c.body).where(_table.c.id.in_(ids)))
    return {row.id: orjson.loads(row.body) for row in rows}

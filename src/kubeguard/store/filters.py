"""Saved filters; those with action ARCHIVE are the suppression rules applied to new findings."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import Connection, delete, insert, select, update

from kubeguard.store import schema
from kubeguard.store.database import now_ms

_table = schema.filters


@dataclass(slots=True)
class FilterRecord:
    detector_id: str
    name: str
    description: str
    action: str
    rank: int
    criterion: dict[str, dict[str, Any]]
    tags: dict[str, str]
    version: int
    created_at_ms: int
    updated_at_ms: int


def _record(row: Any) -> FilterRecord:
    return FilterRecord(
        detector_id=row["detector_id"],
        name=row["name"],
        description=row["description"],
        action=row["action"],
        rank=row["rank"],
        criterion=orjson.loads(row["criteria"]),
        tags=orjson.loads(row["tags"]),
        version=row["version"],
        created_at_ms=row["created_at_ms"],
        updated_at_ms=row["updated_at_ms"],
    )


def create(conn: Connection, record: FilterRecord) -> None:
    conn.execute(
        insert(_table).values(
            detector_id=record.detector_id,
            name=record.name,
            description=record.description,
            action=record.action,
            rank=record.rank,
            criteria=orjson.dumps(record.criterion).decode(),
            tags=orjson.dumps(record.tags).decode(),
            version=1,
            created_at_ms=record.created_at_ms,
            updated_at_ms=record.updated_at_ms,
        )
    )


def get(conn: Connection, detector_id: str, name: str) -> FilterRecord | None:
    row = (
        conn.execute(select(_table).where(_table.c.detector_id == detector_id, _table.c.name == name))
        .mappings()
        .first()
    )
    return _record(row) if row is not None else None


def in_rank_order(conn: Connection, detector_id: str) -> list[FilterRecord]:
    """All filters of a detector, lowest rank first (rank 1 is applied first)."""
    rows = conn.execute(
        select(_table).where(_table.c.detector_id == detector_id).order_by(_table.c.rank, _table.c.name)
    ).mappings()
    return [_record(row) for row in rows]


def count(conn: Connection, detector_id: str) -> int:
    return len(list(conn.execute(select(_table.c.name).where(_table.c.detector_id == detector_id))))


def modify(conn: Connection, detector_id: str, name: str, **changes: Any) -> None:
    """Update description, action, rank or criterion; bumps ``version``."""
    values: dict[str, Any] = {"updated_at_ms": now_ms(), "version": _table.c.version + 1}
    for key, value in changes.items():
        if key == "criterion":
            values["criteria"] = orjson.dumps(value).decode()
        else:
            values[key] = value
    conn.execute(update(_table).where(_table.c.detector_id == detector_id, _table.c.name == name).values(**values))


def remove(conn: Connection, detector_id: str, name: str) -> bool:
    result = conn.execute(delete(_table).where(_table.c.detector_id == detector_id, _table.c.name == name))
    return result.rowcount > 0

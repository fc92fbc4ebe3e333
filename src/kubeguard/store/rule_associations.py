"""Custom Detection Rule associations: which rule runs in which mode (LIVE or DRY_RUN)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import Connection, delete, insert, select, update

from kubeguard.store import schema
from kubeguard.store.database import now_ms

_table = schema.rule_associations


@dataclass(slots=True)
class AssociationRecord:
    id: str
    rule_id: str
    mode: str
    tags: dict[str, str]
    client_token: str | None
    created_at_ms: int
    updated_at_ms: int


def _record(row: Any) -> AssociationRecord:
    return AssociationRecord(
        id=row["id"],
        rule_id=row["rule_id"],
        mode=row["mode"],
        tags=orjson.loads(row["tags"]),
        client_token=row["client_token"],
        created_at_ms=row["created_at_ms"],
        updated_at_ms=row["updated_at_ms"],
    )


def create(conn: Connection, rule_id: str, mode: str, tags: dict[str, str], client_token: str | None) -> str:
    association_id = uuid.uuid4().hex
    stamp = now_ms()
    conn.execute(
        insert(_table).values(
            id=association_id,
            rule_id=rule_id,
            mode=mode,
            tags=orjson.dumps(tags).decode(),
            client_token=client_token,
            created_at_ms=stamp,
            updated_at_ms=stamp,
        )
    )
    return association_id


def get(conn: Connection, association_id: str) -> AssociationRecord | None:
    row = conn.execute(select(_table).where(_table.c.id == association_id)).mappings().first()
    return _record(row) if row is not None else None


def for_rule(conn: Connection, rule_id: str) -> AssociationRecord | None:
    row = conn.execute(select(_table).where(_table.c.rule_id == rule_id)).mappings().first()
    return _record(row) if row is not None else None


def list_all(conn: Connection) -> list[AssociationRecord]:
    rows = conn.execute(select(_table).order_by(_table.c.created_at_ms, _table.c.id)).mappings().all()
    return [_record(row) for row in rows]


def set_mode(conn: Connection, association_id: str, mode: str) -> None:
    conn.execute(update(_table).where(_table.c.id == association_id).values(mode=mode, updated_at_ms=now_ms()))


def remove(conn: Connection, association_id: str) -> None:
    conn.execute(delete(_table).where(_table.c.id == association_id))

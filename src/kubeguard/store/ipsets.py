"""ThreatIntelSets (kind ``THREAT``) and IPSets (kind ``TRUSTED``): where a list lives; is it on."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import Connection, delete, insert, select, update

from kubeguard.store import schema
from kubeguard.store.database import now_ms

_table = schema.ip_sets

THREAT = "THREAT"
TRUSTED = "TRUSTED"


@dataclass(slots=True)
class IpSetRecord:
    id: str
    detector_id: str
    kind: str
    name: str
    format: str
    location: str
    status: str
    tags: dict[str, str]
    expected_bucket_owner: str | None


def _record(row: Any) -> IpSetRecord:
    return IpSetRecord(
        id=row["id"],
        detector_id=row["detector_id"],
        kind=row["kind"],
        name=row["name"],
        format=row["format"],
        location=row["location"],
        status=row["status"],
        tags=orjson.loads(row["tags"]),
        expected_bucket_owner=row["expected_bucket_owner"],
    )


def create(
    conn: Connection,
    *,
    detector_id: str,
    kind: str,
    name: str,
    format: str,
    location: str,
    status: str,
    tags: dict[str, str],
    expected_bucket_owner: str | None,
) -> str:
    new_id = uuid.uuid4().hex
    now = now_ms()
    conn.execute(
        insert(_table).values(
            id=new_id,
            detector_id=detector_id,
            kind=kind,
            name=name,
            format=format,
            location=location,
            status=status,
            tags=orjson.dumps(tags).decode(),
            expected_bucket_owner=expected_bucket_owner,
            created_at_ms=now,
            updated_at_ms=now,
        )
    )
    return new_id


def get(conn: Connection, detector_id: str, kind: str, set_id: str) -> IpSetRecord | None:
    row = (
        conn.execute(
            select(_table).where(_table.c.detector_id == detector_id, _table.c.kind == kind, _table.c.id == set_id)
        )
        .mappings()
        .first()
    )
    return _record(row) if row is not None else None


def list_for(conn: Connection, detector_id: str, kind: str) -> list[IpSetRecord]:
    rows = conn.execute(
        select(_table)
        .where(_table.c.detector_id == detector_id, _table.c.kind == kind)
        .order_by(_table.c.created_at_ms, _table.c.id)
    ).mappings()
    return [_record(row) for row in rows]


def active(conn: Connection) -> list[IpSetRecord]:
    """Every active list of every detector: what detection should load."""
    rows = conn.execute(select(_table).where(_table.c.status == "ACTIVE").order_by(_table.c.id)).mappings()
    return [_record(row) for row in rows]


def modify(conn: Connection, set_id: str, **changes: Any) -> None:
    conn.execute(update(_table).where(_table.c.id == set_id).values(updated_at_ms=now_ms(), **changes))


def remove(conn: Connection, set_id: str) -> None:
    conn.execute(delete(_table).where(_table.c.id == set_id))

"""Detector records: the GuardDuty resource every other one hangs off."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy import Connection, delete, insert, select, update

from kubeguard.store import schema
from kubeguard.store.database import now_ms

_table = schema.detectors

DEFAULT_FREQUENCY = "SIX_HOURS"


@dataclass(slots=True)
class DetectorRecord:
    id: str
    status: str
    publishing_frequency: str
    features: list[dict[str, Any]]
    tags: dict[str, str]
    created_at_ms: int
    updated_at_ms: int
    client_token: str | None = field(default=None)


def new_detector_id() -> str:
    """GuardDuty detector ids are 32 lowercase hex characters."""
    return uuid.uuid4().hex


def create(
    conn: Connection,
    *,
    enabled: bool = True,
    publishing_frequency: str = DEFAULT_FREQUENCY,
    features: list[dict[str, Any]] | None = None,
    tags: dict[str, str] | None = None,
    client_token: str | None = None,
    detector_id: str | None = None,
) -> str:
    """Create a detector; a repeated ``client_token`` returns the detector it created before."""
    if client_token:
        existing = conn.execute(select(_table.c.id).where(_table.c.client_token == client_token)).scalar()
        if existing:
            return str(existing)
    now = now_ms()
    new_id = detector_id or new_detector_id()
    conn.execute(
        insert(_table).values(
            id=new_id,
            status="ENABLED" if enabled else "DISABLED",
            publishing_frequency=publishing_frequency,
            features=orjson.dumps(features or []).decode(),
            tags=orjson.dumps(tags or {}).decode(),
            client_token=client_token,
            created_at_ms=now,
            updated_at_ms=now,
        )
    )
    return new_id


def ensure_default(conn: Connection, preferred_id: str | None = None) -> str:
    """The first detector; one (with ``preferred_id``) is created on first start so the API works at once."""
    first = conn.execute(select(_table.c.id).order_by(_table.c.created_at_ms, _table.c.id).limit(1)).scalar()
    return str(first) if first else create(conn, detector_id=preferred_id)


def stamp_detector(finding: dict[str, Any], detector_id: str) -> dict[str, Any]:
    """File ``finding`` under ``detector_id``: its ``service.detectorId`` and ``arn``.

    Here rather than in the API so that ``kubeguard scan --db`` files findings without importing the web
    framework.
    """
    service = dict(finding.get("service") or {})
    service["detectorId"] = detector_id
    finding = {**finding, "service": service}
    region, account = finding.get("region", ""), finding.get("accountId", "")
    finding["arn"] = f"arn:aws:guardduty:{region}:{account}:detector/{detector_id}/finding/{finding['id']}"
    return finding


def get(conn: Connection, detector_id: str) -> DetectorRecord | None:
    row = conn.execute(select(_table).where(_table.c.id == detector_id)).mappings().first()
    if row is None:
        return None
    return DetectorRecord(
        id=row["id"],
        status=row["status"],
        publishing_frequency=row["publishing_frequency"],
        features=orjson.loads(row["features"]),
        tags=orjson.loads(row["tags"]),
        created_at_ms=row["created_at_ms"],
        updated_at_ms=row["updated_at_ms"],
        client_token=row["client_token"],
    )


def list_ids(conn: Connection) -> list[str]:
    return list(conn.execute(select(_table.c.id).order_by(_table.c.created_at_ms, _table.c.id)).scalars())


def modify(conn: Connection, detector_id: str, **changes: Any) -> None:
    """Update ``status``, ``publishing_frequency``, ``features`` or ``tags`` of a detector."""
    values: dict[str, Any] = {"updated_at_ms": now_ms()}
    for name, value in changes.items():
        values[name] = orjson.dumps(value).decode() if name in ("features", "tags") else value
    conn.execute(update(_table).where(_table.c.id == detector_id).values(**values))


def remove(conn: Connection, detector_id: str) -> None:
    """Delete a detector with its findings, filters and lists, as GuardDuty does.

    Its finding counts go first, so the count triggers of the findings' deletion have no cell to adjust.
    """
    tables = (
        schema.finding_counts,
        schema.finding_day_counts,
        schema.finding_window_counts,
        schema.findings,
        schema.filters,
        schema.ip_sets,
    )
    for table in tables:
        conn.execute(delete(table).where(table.c.detector_id == detector_id))
    conn.execute(delete(_table).where(_table.c.id == detector_id))

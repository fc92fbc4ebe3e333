"""Investigations in the store, and the findings an investigation reads."""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy import Connection, select, update

from kubeguard.findings.criteria import matches
from kubeguard.store import findings as finding_store
from kubeguard.store.schema import investigations as table


def cluster_findings(conn: Connection, detector_id: str, cluster: str | None) -> list[dict[str, Any]]:
    """Non-archived findings of ``cluster`` (every cluster when None)."""
    criterion: dict[str, dict[str, Any]] = {"service.archived": {"eq": ["false"]}}
    if cluster:
        criterion["resource.eksClusterDetails.name"] = {"eq": [cluster]}
    return [f for f in finding_store.scan(conn, detector_id, criterion) if matches(criterion, f)]


def save(conn: Connection, record: dict[str, Any]) -> None:
    conn.execute(table.insert().values(
        id=record["InvestigationId"], entity_arn=record["EntityArn"], created_at_ms=record["_createdMs"],
        state=record["State"], body=orjson.dumps(record).decode()))


def get(conn: Connection, investigation_id: str) -> dict[str, Any] | None:
    row = conn.execute(select(table.c.body, table.c.state).where(table.c.id == investigation_id)).first()
    if row is None:
        return None
    record = orjson.loads(row.body)
    record["State"] = row.state
    return record


def all_records(conn: Connection) -> list[dict[str, Any]]:
    records = []
    for body, state in conn.execute(select(table.c.body, table.c.state).order_by(table.c.created_at_ms.desc())):
        record = orjson.loads(body)
        record["State"] = state
        records.append(record)
    return records


def set_state(conn: Connection, investigation_id: str, state: str) -> bool:
    result = conn.execute(update(table).where(table.c.id == investigation_id).values(state=state))
    return bool(result.rowcount)

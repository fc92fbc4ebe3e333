"""Findings in the store: idempotent upsert by id, reads, and the analyst's changes.

The id is derived from the aggregation fingerprint, so an occurrence that arrives twice (a replayed
spool batch, two workers) lands on the same row and is folded in with
:func:`kubeguard.findings.aggregate.merge_finding`. Queries narrow by the indexed columns in SQL and then
evaluate the whole criterion in Python (:mod:`kubeguard.findings.criteria`), so every field GuardDuty
accepts works and the indexed ones stay fast. That :func:`scan` is now the fallback; the API answers from
SQL alone where it can (:mod:`kubeguard.store.finding_query`, :mod:`kubeguard.store.finding_statistics`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import ColumnElement, Connection, String, and_, bindparam, func, insert, select, update

from kubeguard.findings.aggregate import merge_finding
from kubeguard.findings.criteria import epoch_ms
from kubeguard.store import finding_columns, schema
from kubeguard.store.criteria_sql import RANGE_OPERATORS
from kubeguard.store.dialect import insert_if_absent

_table = schema.findings

#: Criterion fields with an indexed column, and how their values are stored there.
_NUMERIC_COLUMNS = {
    "severity": _table.c.severity,
    "createdAt": _table.c.created_at_ms,
    "updatedAt": _table.c.updated_at_ms,
    "service.eventLastSeen": _table.c.event_last_seen_ms,
    "service.count": _table.c.count,
}
_TEXT_COLUMNS = {"type": _table.c.type, "resource.eksClusterDetails.name": _table.c.cluster}


@dataclass(slots=True, frozen=True)
class Upserted:
    """The stored finding after an upsert, and whether this occurrence created it."""

    finding: dict[str, Any]
    created: bool


def row_values(finding: Mapping[str, Any]) -> dict[str, Any]:
    """The indexed columns and the body of one wire-format finding."""
    values = _base_values(finding)
    values.update(finding_columns.extra_values(finding))
    for name, length in _TEXT_LENGTHS.items():
        value = values[name]
        if isinstance(value, str) and len(value) > length:
            # PostgreSQL refuses a longer value, and the batch with it (a username from an authenticator,
            # a namespace in a request for a made-up object can be any length). Cut, the column is no longer
            # a copy of the field, so is_regular sends this detector's queries to the evaluator.
            values[name] = value[:length]
    values["regular"] = finding_columns.is_regular(finding, values)
    return values


#: The length of each text column a finding's values are copied into; not the key, which names the finding
#: and is never cut (a longer id is refused as before).
_TEXT_LENGTHS = {
    column.name: column.type.length
    for column in _table.columns
    if isinstance(column.type, String) and column.type.length and not column.primary_key
}


def _base_values(finding: Mapping[str, Any]) -> dict[str, Any]:
    service = finding.get("service") or {}
    cluster = ((finding.get("resource") or {}).get("eksClusterDetails") or {}).get("name", "")
    return {
        "id": finding["id"],
        "detector_id": service.get("detectorId", ""),
        "type": finding["type"],
        "severity": float(finding["severity"]),
        "cluster": cluster,
        "archived": bool(service.get("archived", False)),
        "count": int(service.get("count", 1)),
        "created_at_ms": _ms(finding.get("createdAt")),
        "updated_at_ms": _ms(finding.get("updatedAt")),
        "event_last_seen_ms": _ms(service.get("eventLastSeen")),
        "body": orjson.dumps(finding).decode(),
    }


def _ms(timestamp: Any) -> int:
    value = epoch_ms(timestamp) if isinstance(timestamp, str) else 0
    return value if isinstance(value, int) else 0


def upsert(conn: Connection, incoming: dict[str, Any]) -> Upserted:
    """Insert a new finding, or merge an occurrence into the stored one with the same id."""
    if insert_if_absent(conn, _table, row_values(incoming)):
        return Upserted(incoming, created=True)
    statement = select(_table.c.body).where(_table.c.id == incoming["id"])
    if conn.dialect.name == "postgresql":
        statement = statement.with_for_update()
    existing = orjson.loads(conn.execute(statement).scalar_one())
    merged = merge_finding(existing, incoming)
    save(conn, merged)
    return Upserted(merged, created=False)


def locked(conn: Connection, ids: Iterable[str]) -> dict[str, dict[str, Any]]:
    """The stored findings among ``ids`` (any detector), locked for this transaction on PostgreSQL."""
    wanted = list(dict.fromkeys(ids))
    found: dict[str, dict[str, Any]] = {}
    for start in range(0, len(wanted), 500):
        statement = select(_table.c.id, _table.c.body).where(_table.c.id.in_(wanted[start : start + 500]))
        if conn.dialect.name == "postgresql":
            statement = statement.with_for_update()
        found.update((row.id, orjson.loads(row.body)) for row in conn.execute(statement))
    return found


def write_many(conn: Connection, new: list[dict[str, Any]], changed: list[dict[str, Any]]) -> None:
    """Insert ``new`` findings and overwrite ``changed`` ones, one statement each (executemany)."""
    if new:
        conn.execute(insert(_table), [row_values(finding) for finding in new])
    if changed:
        rows = []
        for finding in changed:
            values = row_values(finding)
            values["finding_id"] = values.pop("id")
            rows.append(values)
        columns = {name: bindparam(name) for name in rows[0] if name != "finding_id"}
        conn.execute(update(_table).where(_table.c.id == bindparam("finding_id")).values(columns), rows)


def save(conn: Connection, finding: Mapping[str, Any]) -> None:
    """Overwrite the stored finding with ``finding`` (same id)."""
    values = row_values(finding)
    conn.execute(update(_table).where(_table.c.id == values.pop("id")).values(**values))


def get_many(conn: Connection, detector_id: str, ids: Iterable[str]) -> dict[str, dict[str, Any]]:
    """The findings of ``detector_id`` among ``ids``, by id; unknown ids are absent."""
    wanted = list(dict.fromkeys(ids))
    if not wanted:
        return {}
    rows = conn.execute(
        select(_table.c.id, _table.c.body).where(and_(_table.c.detector_id == detector_id, _table.c.id.in_(wanted)))
    )
    return {row.id: orjson.loads(row.body) for row in rows}


def scan(
    conn: Connection,
    detector_id: str | None,
    criterion: Mapping[str, Mapping[str, Any]],
    limit: int | None = None,
) -> Iterator[dict[str, Any]]:
    """Findings that may match ``criterion``: a superset, narrowed in SQL by the indexed fields.

    The caller applies :func:`kubeguard.findings.criteria.matches` for the exact answer.
    """
    statement = select(_table.c.body).order_by(_table.c.updated_at_ms.desc(), _table.c.id)
    if detector_id is not None:
        statement = statement.where(_table.c.detector_id == detector_id)
    for clause in _sql_prefilter(criterion):
        statement = statement.where(clause)
    if limit is not None:
        statement = statement.limit(limit)
    for (body,) in conn.execute(statement):
        yield orjson.loads(body)


def _sql_prefilter(criterion: Mapping[str, Mapping[str, Any]]) -> Iterator[ColumnElement[bool]]:
    """SQL conditions implied by ``criterion``; only those that can never exclude a true match."""
    for field, condition in criterion.items():
        if field == "service.archived":
            wanted = {v.lower() for v in condition.get("eq", condition.get("equals", []))}
            if wanted == {"true"} or wanted == {"false"}:
                yield _table.c.archived == (wanted == {"true"})
        elif field in _TEXT_COLUMNS:
            wanted_text = condition.get("eq", condition.get("equals"))
            if wanted_text:
                yield _TEXT_COLUMNS[field].in_(wanted_text)
        elif field in _NUMERIC_COLUMNS:
            column = _NUMERIC_COLUMNS[field]
            for operator, operand in condition.items():
                method = RANGE_OPERATORS.get(operator)
                if method is not None:
                    yield getattr(column, method)(operand)


def set_flag(conn: Connection, detector_id: str, ids: Iterable[str], mutate: Any) -> list[str]:
    """Apply ``mutate(service_dict)`` to each named finding; returns the ids that were not found."""
    found = get_many(conn, detector_id, ids)
    for finding in found.values():
        service = dict(finding.get("service") or {})
        mutate(service)
        finding["service"] = service
        save(conn, finding)
    return [i for i in ids if i not in found]


def count(conn: Connection) -> int:
    return int(conn.execute(select(func.count()).select_from(_table)).scalar_one())

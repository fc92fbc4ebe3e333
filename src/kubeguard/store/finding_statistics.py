"""GetFindingsStatistics aggregated in SQL: GROUP BY over the indexed finding columns.

The totals are the ones the API computes from findings (:mod:`kubeguard.api.guardduty.statistics`): a
group's count, its latest ``updatedAt`` (seconds) and its highest severity; RESOURCE groups also name the
account of their most recently updated finding (ties: the smallest id). Valid only for a criterion with
no residual part on a detector whose rows are all regular (:func:`kubeguard.store.finding_query.sql_ready`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import ColumnElement, Connection, func, literal, select

from kubeguard.store import schema
from kubeguard.store.criteria_sql import translate

_table = schema.findings
_DAY_MS = 86_400_000

#: The SQL expression each ``groupBy`` value groups on.
_GROUP_KEYS: dict[str, ColumnElement[Any]] = {
    "ACCOUNT": func.coalesce(_table.c.account_id, literal("")),
    "DATE": _table.c.updated_at_ms // _DAY_MS,
    "FINDING_TYPE": _table.c.type,
    "RESOURCE": _table.c.cluster,
    "SEVERITY": _table.c.severity,
}


def in_sql(criterion: Mapping[str, Mapping[str, Any]]) -> bool:
    """True when the whole criterion translates to SQL (nothing to evaluate in Python)."""
    return not translate(criterion).residual


def _where(detector_id: str, criterion: Mapping[str, Mapping[str, Any]]) -> list[ColumnElement[bool]]:
    return [_table.c.detector_id == detector_id, *translate(criterion).clauses]


def count_by_severity(conn: Connection, detector_id: str, criterion: Mapping[str, Mapping[str, Any]]) -> dict[str, int]:
    statement = (
        select(_table.c.severity, func.count()).where(*_where(detector_id, criterion)).group_by(_table.c.severity)
    )
    return {str(float(severity)): int(total) for severity, total in conn.execute(statement)}


def groups(
    conn: Connection, detector_id: str, criterion: Mapping[str, Mapping[str, Any]], group_by: str
) -> dict[Any, dict[str, Any]]:
    """Group key -> {totalFindings, lastGeneratedAt, severity[, accountId]}, as statistics.ordered wants."""
    key = _GROUP_KEYS[group_by].label("key")
    where = _where(detector_id, criterion)
    statement = (
        select(key, func.count(), func.max(_table.c.updated_at_ms), func.max(_table.c.severity))
        .where(*where)
        .group_by(key)
    )
    result: dict[Any, dict[str, Any]] = {}
    for group_key, total, last_ms, severity in conn.execute(statement):
        entry = {
            "totalFindings": int(total),
            "lastGeneratedAt": max(0.0, int(last_ms) / 1000),
            "severity": max(0.0, float(severity)),
        }
        if group_by == "RESOURCE":
            entry["accountId"] = _latest_account(conn, where, group_key)
        result[_python_key(group_by, group_key)] = entry
    return result


def _python_key(group_by: str, key: Any) -> Any:
    if group_by == "DATE":
        return float(int(key) * 86_400)
    if group_by == "SEVERITY":
        return float(key)
    return key


def _latest_account(conn: Connection, where: list[ColumnElement[bool]], cluster: str) -> str:
    statement = (
        select(_table.c.account_id)
        .where(*where, _table.c.cluster == cluster)
        .order_by(_table.c.updated_at_ms.desc(), _table.c.id)
        .limit(1)
    )
    account = conn.execute(statement).scalar()
    return account if account is not None else ""

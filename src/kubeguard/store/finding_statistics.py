"""GetFindingsStatistics aggregated in SQL: from the pre-aggregated cells, else GROUP BY over the findings.

A criterion that only names fields the cells keep (archived, severity, type, cluster and account; archived,
severity and cluster for groupBy DATE) is answered from ``kg_finding_counts`` / ``kg_finding_day_counts``
(:mod:`kubeguard.store.finding_counts`): thousands of cells instead of every finding. Any other criterion
groups the matching findings through their indexed columns.

The totals are the ones the API computes from findings (:mod:`kubeguard.api.guardduty.statistics`): a
group's count, its latest ``updatedAt`` (seconds) and its highest severity; RESOURCE groups also name the
account of their most recently updated finding (ties: the smallest id). Valid only for a criterion with
no residual part on a detector whose rows are all regular (:func:`kubeguard.store.finding_query.sql_ready`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import ColumnElement, Connection, Table, case, func, literal, select

from kubeguard.store import schema
from kubeguard.store.criteria_sql import translate
from kubeguard.store.finding_columns import FieldColumn

_table = schema.findings
_counts = schema.finding_counts
_days = schema.finding_day_counts
_DAY_MS = 86_400_000

#: The criterion fields each counts table keeps, as its columns (same kinds as the finding columns).
_COUNT_FIELDS = {
    spec.field: spec
    for spec in (
        FieldColumn("service.archived", _counts.c.archived, "bool"),
        FieldColumn("severity", _counts.c.severity, "number"),
        FieldColumn("type", _counts.c.type, "text"),
        FieldColumn("resource.eksClusterDetails.name", _counts.c.cluster, "text"),
        FieldColumn("accountId", case((_counts.c.has_account, _counts.c.account_id), else_=None), "text"),
    )
}
_DAY_FIELDS = {
    spec.field: spec
    for spec in (
        FieldColumn("service.archived", _days.c.archived, "bool"),
        FieldColumn("severity", _days.c.severity, "number"),
        FieldColumn("resource.eksClusterDetails.name", _days.c.cluster, "text"),
    )
}
#: What each ``groupBy`` groups the cells on (``account_id`` is already '' for a finding without one).
_CELL_KEYS: dict[str, ColumnElement[Any]] = {
    "ACCOUNT": _counts.c.account_id,
    "DATE": _days.c.day,
    "FINDING_TYPE": _counts.c.type,
    "RESOURCE": _counts.c.cluster,
    "SEVERITY": _counts.c.severity,
}

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


def _cells(
    table: Table, fields: dict[str, FieldColumn], detector_id: str, criterion: Mapping[str, Mapping[str, Any]]
) -> list[ColumnElement[bool]] | None:
    """The WHERE clauses selecting ``table``'s cells for ``criterion``, or None when the cells cannot answer."""
    plan = translate(criterion, fields)
    if plan.residual:
        return None
    return [table.c.detector_id == detector_id, *plan.clauses]


def count_by_severity(conn: Connection, detector_id: str, criterion: Mapping[str, Mapping[str, Any]]) -> dict[str, int]:
    cells = _cells(_counts, _COUNT_FIELDS, detector_id, criterion)
    if cells is not None:
        statement = select(_counts.c.severity, func.sum(_counts.c.findings)).where(*cells).group_by(_counts.c.severity)
    else:
        statement = (
            select(_table.c.severity, func.count()).where(*_where(detector_id, criterion)).group_by(_table.c.severity)
        )
    return {str(float(severity)): int(total) for severity, total in conn.execute(statement)}


def groups(
    conn: Connection, detector_id: str, criterion: Mapping[str, Mapping[str, Any]], group_by: str
) -> dict[Any, dict[str, Any]]:
    """Group key -> {totalFindings, lastGeneratedAt, severity[, accountId]}, as statistics.ordered wants."""
    table, fields = (_days, _DAY_FIELDS) if group_by == "DATE" else (_counts, _COUNT_FIELDS)
    cells = _cells(table, fields, detector_id, criterion)
    where = _where(detector_id, criterion)
    if cells is not None:
        key = _CELL_KEYS[group_by].label("key")
        statement = select(
            key, func.sum(table.c.findings), func.max(table.c.last_updated_ms), func.max(table.c.severity)
        ).where(*cells)
    else:
        key = _GROUP_KEYS[group_by].label("key")
        statement = select(key, func.count(), func.max(_table.c.updated_at_ms), func.max(_table.c.severity)).where(
            *where
        )
    result: dict[Any, dict[str, Any]] = {}
    for group_key, total, last_ms, severity in conn.execute(statement.group_by(key)):
        result[_python_key(group_by, group_key)] = {
            "totalFindings": int(total),
            "lastGeneratedAt": max(0.0, int(last_ms) / 1000),
            "severity": max(0.0, float(severity)),
        }
    if group_by == "RESOURCE":
        latest = _latest_accounts_of_cells(conn, cells) if cells is not None else {}
        for cluster, entry in result.items():
            account = latest.get(cluster)
            entry["accountId"] = account if account is not None else _latest_account(conn, where, cluster)
    return result


def _latest_accounts_of_cells(conn: Connection, cells: list[ColumnElement[bool]]) -> dict[str, str]:
    """Cluster -> account of its latest cell, for the clusters whose latest update is in one account only.

    Clusters missing from the answer have cells of several accounts sharing the latest update; the
    finding-level tie-break (smallest id) then decides.
    """
    latest = func.max(_counts.c.last_updated_ms).over(partition_by=_counts.c.cluster).label("latest")
    ranked = select(_counts.c.cluster, _counts.c.has_account, _counts.c.account_id, _counts.c.last_updated_ms, latest)
    ranked_cells = ranked.where(*cells).subquery()
    statement = select(ranked_cells.c.cluster, ranked_cells.c.has_account, ranked_cells.c.account_id).where(
        ranked_cells.c.last_updated_ms == ranked_cells.c.latest
    )
    accounts: dict[str, set[str]] = {}
    for cluster, has_account, account in conn.execute(statement):
        accounts.setdefault(cluster, set()).add(account if has_account else "")
    return {cluster: next(iter(found)) for cluster, found in accounts.items() if len(found) == 1}


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

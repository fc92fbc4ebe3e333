"""GetFindingsStatistics aggregated in SQL: from the pre-aggregated cells, else GROUP BY over the findings.

A criterion that only names fields the cells keep (archived, severity, type, cluster and account; archived,
severity and cluster for groupBy DATE) is answered from ``kg_finding_counts`` / ``kg_finding_day_counts``
(:mod:`kubeguard.store.finding_counts`): thousands of cells instead of every finding. When it also bounds
``updatedAt`` (the console's "last 7 days"), the whole days of that window are summed from the day cells
(``kg_finding_window_counts``, or ``kg_finding_day_counts`` for DATE) and only the findings of its partial
first and last days are grouped, through the updatedAt index: at most two days of findings whatever the
window's length. Any other criterion groups the matching findings through their indexed columns.

The totals are the ones the API computes from findings (:mod:`kubeguard.api.guardduty.statistics`): a
group's count, its latest ``updatedAt`` (seconds) and its highest severity; RESOURCE groups also name the
account of their most recently updated finding (ties: the smallest id). Valid only for a criterion with
no residual part on a detector whose rows are all regular (:func:`kubeguard.store.finding_query.sql_ready`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import BigInteger, ColumnElement, Connection, Table, case, func, literal, or_, select

from kubeguard.store import schema
from kubeguard.store.criteria_sql import RANGE_OPERATORS, translate
from kubeguard.store.finding_columns import FieldColumn

_table = schema.findings
_counts = schema.finding_counts
_days = schema.finding_day_counts
_windows = schema.finding_window_counts
_DAY_MS = 86_400_000
_MIN_MS, _MAX_MS = -(2**63), 2**63 - 1


def _cell_fields(table: Table) -> dict[str, FieldColumn]:
    """The criterion fields a table of full cells keeps, as its columns (same kinds as the finding columns)."""
    return {
        spec.field: spec
        for spec in (
            FieldColumn("service.archived", table.c.archived, "bool"),
            FieldColumn("severity", table.c.severity, "number"),
            FieldColumn("type", table.c.type, "text"),
            FieldColumn("resource.eksClusterDetails.name", table.c.cluster, "text"),
            FieldColumn("accountId", case((table.c.has_account, table.c.account_id), else_=None), "text"),
        )
    }


_COUNT_FIELDS = _cell_fields(_counts)
_WINDOW_FIELDS = _cell_fields(_windows)
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


def count_of_every_detector(
    conn: Connection, criterion: Mapping[str, Mapping[str, Any]], archived: bool | None
) -> int | None:
    """How many findings of all detectors match ``criterion`` (and are ``archived``, unless None), summed
    from the cells; None when the cells cannot answer (a field they do not keep)."""
    plan = translate(criterion, _COUNT_FIELDS)
    if plan.residual:
        return None
    where = list(plan.clauses)
    if archived is not None:
        where.append(_counts.c.archived == archived)
    return int(conn.execute(select(func.coalesce(func.sum(_counts.c.findings), 0)).where(*where)).scalar_one())


def archived_severities(
    conn: Connection, criterion: Mapping[str, Mapping[str, Any]]
) -> list[tuple[bool, float]] | None:
    """The (archived, severity) values of every detector's findings that ``criterion`` matches, from the
    cells; None when the cells cannot answer (a field they do not keep)."""
    plan = translate(criterion, _COUNT_FIELDS)
    if plan.residual:
        return None
    statement = select(_counts.c.archived, _counts.c.severity).where(*plan.clauses).distinct()
    return sorted((bool(archived), float(severity)) for archived, severity in conn.execute(statement))


def count_by_severity(conn: Connection, detector_id: str, criterion: Mapping[str, Mapping[str, Any]]) -> dict[str, int]:
    windowed = _windowed(conn, detector_id, criterion, "SEVERITY")
    if windowed is not None:
        return {str(float(severity)): entry["totalFindings"] for severity, entry in windowed.items()}
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
    windowed = _windowed(conn, detector_id, criterion, group_by)
    if windowed is not None:
        return windowed
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


# -- an updatedAt window: whole days from the day cells, the partial edge days from the findings -----------


@dataclass(frozen=True, slots=True)
class _Window:
    """The ``updatedAt`` bounds of a criterion, inclusive, in epoch ms (None: unbounded)."""

    low: int | None
    high: int | None

    def whole_days(self) -> tuple[int, int | None]:
        """(first, last) day whose every millisecond lies in the window (last None: every later day).

        Day 0 and below are never whole: the cells' day is ``updated_at_ms / 86400000`` in SQL, which
        truncates toward zero, so day 0 holds a day either side of the epoch.
        """
        first = 1 if self.low is None else max(1, -(-self.low // _DAY_MS))
        last = None if self.high is None else (self.high + 1) // _DAY_MS - 1
        return first, last

    def edges(self) -> list[tuple[int, int]]:
        """The inclusive ms ranges of the window outside its whole days (each within one day)."""
        first, last = self.whole_days()
        ranges = [(_MIN_MS if self.low is None else self.low, min(first * _DAY_MS - 1, _MAX_MS))]
        if last is not None and self.high is not None:
            ranges.append((max((last + 1) * _DAY_MS, _MIN_MS), self.high))
        return [(start, end) for start, end in ranges if start <= end]


def _window_of(criterion: Mapping[str, Mapping[str, Any]]) -> _Window | None:
    """The window of a criterion whose ``updatedAt`` condition is only integer range operators, else None."""
    condition = criterion.get("updatedAt")
    if not condition:
        return None
    low: int | None = None
    high: int | None = None
    for operator, operand in condition.items():
        method = RANGE_OPERATORS.get(operator)
        if method is None or isinstance(operand, bool) or not isinstance(operand, int):
            return None
        if method in ("__gt__", "__ge__"):
            bound = operand + 1 if method == "__gt__" else operand
            low = bound if low is None else max(low, bound)
        else:
            bound = operand - 1 if method == "__lt__" else operand
            high = bound if high is None else min(high, bound)
    if (low is not None and low > _MAX_MS) or (high is not None and high < _MIN_MS):
        return None  # nothing is updated then; the plain query says so without a bound out of BIGINT range
    return _Window(low, high)


def _windowed(
    conn: Connection, detector_id: str, criterion: Mapping[str, Mapping[str, Any]], group_by: str
) -> dict[Any, dict[str, Any]] | None:
    """:func:`groups` for a criterion bounding ``updatedAt`` over at least one whole day, else None.

    The whole days' cells and the edge days' findings are grouped by the group key (and, for RESOURCE, the
    account too), then merged here: a few rows per group, however many findings the window holds.
    """
    window = _window_of(criterion)
    if window is None:
        return None
    first, last = window.whole_days()
    if last is not None and last < first:
        return None
    rest = {name: condition for name, condition in criterion.items() if name != "updatedAt"}
    source = _Sources.of(detector_id, rest, group_by)
    if source is None:
        return None
    days = [source.table.c.day >= literal(first, BigInteger())]
    if last is not None:
        days.append(source.table.c.day <= literal(last, BigInteger()))
    rows = source.cells(conn, days)
    for start, end in window.edges():
        rows.extend(_edge(conn, source, start, end))
    return _merged(conn, group_by, rows, _where(detector_id, criterion))


#: (group key, account or None, [severity,] findings, latest updated_at_ms, highest severity)
_Row = tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class _Sources:
    """The two sides of a windowed statistic, day cells and findings, each grouped into :data:`_Row` s."""

    table: Table
    cell_where: list[ColumnElement[bool]]
    finding_where: list[ColumnElement[bool]]
    group_by: str

    @staticmethod
    def of(detector_id: str, rest: Mapping[str, Mapping[str, Any]], group_by: str) -> _Sources | None:
        table, fields = (_days, _DAY_FIELDS) if group_by == "DATE" else (_windows, _WINDOW_FIELDS)
        cells = _cells(table, fields, detector_id, rest)
        if cells is None:
            return None
        return _Sources(table, cells, _where(detector_id, rest), group_by)

    @property
    def by_account(self) -> bool:
        return self.group_by == "RESOURCE"

    def cells(self, conn: Connection, where: list[ColumnElement[bool]], by_severity: bool = False) -> list[_Row]:
        """Rows of the cells matching ``where``; ``by_severity`` adds each row's severity after its account."""
        table = self.table
        account = case((table.c.has_account, table.c.account_id), else_=literal("")) if self.by_account else None
        totals = (func.sum(table.c.findings), func.max(table.c.last_updated_ms), func.max(table.c.severity))
        key = table.c[_CELL_KEYS[self.group_by].name]
        severity = table.c.severity if by_severity else None
        return self._rows(conn, key, account, severity, totals, [*self.cell_where, *where])

    def findings(self, conn: Connection, ranges: list[tuple[int, int]], by_severity: bool = False) -> list[_Row]:
        """Rows of the matching findings updated within ``ranges`` (inclusive ms)."""
        account = func.coalesce(_table.c.account_id, literal("")) if self.by_account else None
        totals = (func.count(), func.max(_table.c.updated_at_ms), func.max(_table.c.severity))
        within = or_(
            *(_table.c.updated_at_ms.between(literal(a, BigInteger()), literal(b, BigInteger())) for a, b in ranges)
        )
        severity = _table.c.severity if by_severity else None
        return self._rows(conn, _GROUP_KEYS[self.group_by], account, severity, totals, [*self.finding_where, within])

    @staticmethod
    def _rows(
        conn: Connection,
        key: ColumnElement[Any],
        account: ColumnElement[Any] | None,
        severity: ColumnElement[Any] | None,
        totals: tuple[ColumnElement[Any], ...],
        where: list[ColumnElement[bool]],
    ) -> list[_Row]:
        keys = [column for column in (key.label("key"), account, severity) if column is not None]
        rows = []
        for row in conn.execute(select(*keys, *totals).where(*where).group_by(*keys)):
            values = list(row)
            found = (values.pop(0), values.pop(0) if account is not None else None)
            picked = (float(values.pop(0)),) if severity is not None else ()
            total, last_ms, highest = values
            rows.append((*found, *picked, int(total), int(last_ms), float(highest)))
        return rows


def _edge(conn: Connection, source: _Sources, start: int, end: int) -> list[_Row]:
    """The rows of the findings updated in ``start``..``end`` (part of one day).

    When the rest of that day is the shorter part, its findings are subtracted from the day's cells
    instead, per (key, account, severity), so an edge never reads more than half a day of findings. A
    cell's latest update is then exact unless the subtracted part holds the latest of its bucket (only
    possible on a window's last day); such a day is read directly after all.
    """
    day = start // _DAY_MS
    day_start, day_end = day * _DAY_MS, day * _DAY_MS + _DAY_MS - 1
    rest = [(a, b) for a, b in ((day_start, start - 1), (end + 1, day_end)) if a <= b]
    if day < 1 or end > day_end or sum(b - a + 1 for a, b in rest) >= end - start + 1:
        return source.findings(conn, [(start, end)])
    subtracted = {row[:3]: row[3:5] for row in source.findings(conn, rest, by_severity=True)}
    rows = []
    for key, account, severity, total, last_ms, _ in source.cells(
        conn, [source.table.c.day == literal(day, BigInteger())], by_severity=True
    ):
        gone, gone_latest = subtracted.get((key, account, severity), (0, None))
        if total - gone <= 0:
            continue
        if gone_latest is not None and gone_latest >= last_ms:
            return source.findings(conn, [(start, end)])
        rows.append((key, account, total - gone, last_ms, severity))
    return rows


def _merged(
    conn: Connection, group_by: str, rows: list[_Row], where: list[ColumnElement[bool]]
) -> dict[Any, dict[str, Any]]:
    """The groups of (key, account, findings, latest, severity) rows; a RESOURCE group's account is the
    one of its latest row, or (when rows of several accounts share the latest) the finding-level tie-break."""
    totals: dict[Any, list[Any]] = {}
    latest: dict[Any, tuple[int, set[str]]] = {}
    for key, account, total, last_ms, severity in rows:
        entry = totals.setdefault(key, [0, last_ms, severity])
        entry[0] += total
        entry[1] = max(entry[1], last_ms)
        entry[2] = max(entry[2], severity)
        seen_ms, accounts = latest.get(key, (last_ms, set()))
        if last_ms > seen_ms:
            seen_ms, accounts = last_ms, set()
        if last_ms == seen_ms:
            accounts.add(account)
        latest[key] = (seen_ms, accounts)
    result: dict[Any, dict[str, Any]] = {}
    for key, (total, last_ms, severity) in totals.items():
        entry = {"totalFindings": total, "lastGeneratedAt": max(0.0, last_ms / 1000), "severity": max(0.0, severity)}
        if group_by == "RESOURCE":
            accounts = latest[key][1]
            entry["accountId"] = next(iter(accounts)) if len(accounts) == 1 else _latest_account(conn, where, key)
        result[_python_key(group_by, key)] = entry
    return result

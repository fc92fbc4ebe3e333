"""Pre-aggregated finding counts, kept exact by triggers in the transaction that writes the findings.

GetFindingsStatistics groups every finding of a detector; even with covering indexes a GROUP BY over a
million rows reads a million index entries. The cells of ``kg_finding_counts`` (detector, archived, type,
severity, cluster, account), ``kg_finding_day_counts`` (detector, archived, severity, cluster, day) and
``kg_finding_window_counts`` (the first's cells per day) hold each combination's number of findings and
latest ``updated_at_ms``; statistics whose criterion touches only those fields (and, through the days,
``updatedAt``) read the cells instead (:mod:`kubeguard.store.finding_statistics`). The day is
``updated_at_ms / 86400000`` in SQL.

Triggers rather than Python bookkeeping, because every path that changes a finding must keep the cells
exact: inserts, merges, archive and unarchive, feedback, the query-column back-fill, a detector's deletion,
and anything added later. A finding leaving a cell lowers its count; when it held the cell's latest
``updated_at_ms`` the latest is recomputed from the remaining findings (an index probe), so the value is
exact, not a high-water mark. Cells that reach zero are deleted.

SQLite runs a row trigger per finding. PostgreSQL runs one statement trigger per statement over its
transition tables, so a bulk insert, ``COPY`` or delete updates each touched cell once; it applies the
changes in key order, so two transactions never wait on each other's cells in opposite orders.
"""

# The trigger and rebuild SQL is assembled from this module's constants (table, column and key names),
# never from input, so string-built SQL is safe here and the rule that flags it is off for this file.
# ruff: noqa: S608

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, text

DAY_MS = 86_400_000


@dataclass(frozen=True, slots=True)
class Aggregate:
    """One counts table: its key columns and the expression each takes from a finding row ``{r}``."""

    table: str
    keys: tuple[tuple[str, str], ...]
    #: An extra condition on findings ``f`` of a cell whose day is ``{day}`` that lets the recompute use a
    #: range index.
    narrowing: str = ""

    def narrowed(self, row: str) -> str:
        """:attr:`narrowing` for the cell of finding row ``row`` (``c`` names the cell's own row)."""
        if not self.narrowing:
            return ""
        day = "c.day" if row == "c" else dict(self.keys)["day"].format(r=row)
        return self.narrowing.format(day=f"({day})")

    def key_names(self) -> str:
        return ", ".join(name for name, _ in self.keys)

    def values(self, row: str) -> str:
        return ", ".join(expression.format(r=row) for _, expression in self.keys)

    def selected(self, row: str) -> str:
        return ", ".join(f"{expression.format(r=row)} AS {name}" for name, expression in self.keys)

    def cell_of(self, row: str, cell: str) -> str:
        """SQL true when finding row ``row`` belongs to the cell whose key columns are ``cell``."""
        return " AND ".join(f"{expression.format(r=row)} = {cell}.{name}" for name, expression in self.keys)


#: Integer division truncates toward zero, so a day cell's findings lie within a day either side of it.
_WITHIN_A_DAY = f"AND f.updated_at_ms BETWEEN ({{day}} - 1) * {DAY_MS} AND ({{day}} + 1) * {DAY_MS}"

AGGREGATES = (
    Aggregate(
        "kg_finding_counts",
        (
            ("detector_id", "{r}.detector_id"),
            ("archived", "{r}.archived"),
            ("type", "{r}.type"),
            ("severity", "{r}.severity"),
            ("cluster", "{r}.cluster"),
            ("has_account", "({r}.account_id IS NOT NULL)"),
            ("account_id", "coalesce({r}.account_id, '')"),
        ),
    ),
    Aggregate(
        "kg_finding_day_counts",
        (
            ("detector_id", "{r}.detector_id"),
            ("archived", "{r}.archived"),
            ("severity", "{r}.severity"),
            ("cluster", "{r}.cluster"),
            ("day", f"({{r}}.updated_at_ms / {DAY_MS})"),
        ),
        narrowing=_WITHIN_A_DAY,
    ),
    Aggregate(
        "kg_finding_window_counts",
        (
            ("detector_id", "{r}.detector_id"),
            ("day", f"({{r}}.updated_at_ms / {DAY_MS})"),
            ("archived", "{r}.archived"),
            ("type", "{r}.type"),
            ("severity", "{r}.severity"),
            ("cluster", "{r}.cluster"),
            ("has_account", "({r}.account_id IS NOT NULL)"),
            ("account_id", "coalesce({r}.account_id, '')"),
        ),
        narrowing=_WITHIN_A_DAY,
    ),
)

#: Finding columns whose change can move a finding between cells or change a cell's latest update.
_WATCHED = ("detector_id", "archived", "type", "severity", "cluster", "account_id", "updated_at_ms")


#: The tables schema version 12 counted (its migration installs triggers for these only; version 14 adds
#: the window counts).
VERSION_12 = AGGREGATES[:2]


def install(
    conn: Connection,
    aggregates: tuple[Aggregate, ...] = AGGREGATES,
    rebuilt: tuple[Aggregate, ...] | None = None,
) -> None:
    """Create (or re-create) the triggers keeping ``aggregates``, and recount the cells of ``rebuilt``
    (all of ``aggregates`` unless given) from the findings as they are now."""
    if conn.dialect.name == "postgresql":
        _install_postgresql(conn, aggregates)
    else:
        _install_sqlite(conn, aggregates)
    rebuild(conn, aggregates if rebuilt is None else rebuilt)


def on_metadata_create(_metadata: Any, conn: Connection, **_kw: Any) -> None:
    """``after_create`` hook of the store's metadata: a store made by ``create_all`` (however it is made)
    gets its triggers with its tables, so its counts are kept from the first finding."""
    install(conn)


def uninstall(conn: Connection) -> None:
    """Drop the triggers (a bulk load then calls :func:`install`, which recounts once at the end)."""
    for name in _TRIGGERS:
        on_table = " ON kg_findings" if conn.dialect.name == "postgresql" else ""
        conn.execute(text(f"DROP TRIGGER IF EXISTS {name}{on_table}"))


def rebuild(conn: Connection, aggregates: tuple[Aggregate, ...] = AGGREGATES) -> None:
    """Recount every cell of ``aggregates`` from ``kg_findings`` (one GROUP BY per table)."""
    for aggregate in aggregates:
        conn.execute(text(f"DELETE FROM {aggregate.table}"))
        group = ", ".join(expression.format(r="f") for _, expression in aggregate.keys)
        conn.execute(
            text(
                f"INSERT INTO {aggregate.table} ({aggregate.key_names()}, findings, last_updated_ms) "
                f"SELECT {aggregate.selected('f')}, count(*), max(f.updated_at_ms) FROM kg_findings f "
                f"GROUP BY {group}"
            )
        )


# SQLite: a row trigger per operation; an update moves the finding out of its old cell and into its new.

_TRIGGERS = ("kg_findings_counted_insert", "kg_findings_counted_delete", "kg_findings_counted_update")


def _sqlite_add(aggregate: Aggregate) -> str:
    return (
        f"INSERT INTO {aggregate.table} ({aggregate.key_names()}, findings, last_updated_ms) "
        f"VALUES ({aggregate.values('NEW')}, 1, NEW.updated_at_ms) "
        f"ON CONFLICT ({aggregate.key_names()}) DO UPDATE SET findings = findings + 1, "
        f"last_updated_ms = max(last_updated_ms, excluded.last_updated_ms);"
    )


def _sqlite_remove(aggregate: Aggregate) -> str:
    cell = " AND ".join(f"{name} = {expression.format(r='OLD')}" for name, expression in aggregate.keys)
    narrowing = aggregate.narrowed("OLD")
    latest = (
        "SELECT f.updated_at_ms FROM kg_findings f WHERE "
        + " AND ".join(f"{e.format(r='f')} = {e.format(r='OLD')}" for _, e in aggregate.keys)
        + f" {narrowing} ORDER BY f.updated_at_ms DESC LIMIT 1"
    )
    return (
        f"UPDATE {aggregate.table} SET findings = findings - 1, last_updated_ms = CASE "
        f"WHEN findings <= 1 OR OLD.updated_at_ms < last_updated_ms THEN last_updated_ms "
        f"ELSE coalesce(({latest}), 0) END WHERE {cell}; "
        f"DELETE FROM {aggregate.table} WHERE {cell} AND findings <= 0;"
    )


def _install_sqlite(conn: Connection, aggregates: tuple[Aggregate, ...]) -> None:
    uninstall(conn)
    add = " ".join(_sqlite_add(a) for a in aggregates)
    remove = " ".join(_sqlite_remove(a) for a in aggregates)
    changed = " OR ".join(f"OLD.{column} IS NOT NEW.{column}" for column in _WATCHED)
    conn.execute(text(f"CREATE TRIGGER kg_findings_counted_insert AFTER INSERT ON kg_findings BEGIN {add} END"))
    conn.execute(text(f"CREATE TRIGGER kg_findings_counted_delete AFTER DELETE ON kg_findings BEGIN {remove} END"))
    # Add to the new cell first: when the finding stays in its cell with a later update, the old value is
    # then below the cell's latest and no recompute is needed.
    conn.execute(
        text(
            f"CREATE TRIGGER kg_findings_counted_update AFTER UPDATE ON kg_findings WHEN {changed} "
            f"BEGIN {add} {remove} END"
        )
    )


# PostgreSQL: statement triggers over transition tables.

_PG_FUNCTION = "kg_findings_count"


def _pg_changes(aggregate: Aggregate, sources: tuple[tuple[str, int], ...]) -> str:
    """Per touched cell: the net change in findings and the latest update added and removed."""
    parts = " UNION ALL ".join(
        f"SELECT {aggregate.selected('r')}, {sign} AS sign, r.updated_at_ms FROM {table} r" for table, sign in sources
    )
    names = aggregate.key_names()
    return (
        f"SELECT {names}, sum(sign) AS added, max(updated_at_ms) FILTER (WHERE sign > 0) AS added_latest, "
        f"max(updated_at_ms) FILTER (WHERE sign < 0) AS removed_latest FROM ({parts}) changes GROUP BY {names}"
    )


def _pg_statements(aggregate: Aggregate, sources: tuple[tuple[str, int], ...]) -> str:
    names = aggregate.key_names()
    changes = _pg_changes(aggregate, sources)
    matched = " AND ".join(f"c.{name} = d.{name}" for name, _ in aggregate.keys)
    statements = [
        f"INSERT INTO {aggregate.table} AS c ({names}, findings, last_updated_ms) "
        f"SELECT {names}, added, coalesce(added_latest, 0) FROM ({changes}) d "
        f"WHERE added <> 0 OR added_latest IS DISTINCT FROM removed_latest ORDER BY {names} "
        f"ON CONFLICT ({names}) DO UPDATE SET findings = c.findings + excluded.findings, "
        f"last_updated_ms = greatest(c.last_updated_ms, excluded.last_updated_ms);"
    ]
    if any(sign < 0 for _, sign in sources):
        latest = (
            f"SELECT f.updated_at_ms FROM kg_findings f WHERE {aggregate.cell_of('f', 'c')} "
            f"{aggregate.narrowed('c')} ORDER BY f.updated_at_ms DESC LIMIT 1"
        )
        statements.append(
            f"UPDATE {aggregate.table} c SET last_updated_ms = coalesce(({latest}), 0) FROM ({changes}) d "
            f"WHERE {matched} AND c.findings > 0 AND d.removed_latest >= c.last_updated_ms;"
        )
        statements.append(f"DELETE FROM {aggregate.table} c USING ({changes}) d WHERE {matched} AND c.findings <= 0;")
    return " ".join(statements)


def _pg_unchanged() -> str:
    """True when an update moved no finding between cells and changed no latest update (feedback, counts)."""
    differs = " OR ".join(f"o.{column} IS DISTINCT FROM n.{column}" for column in _WATCHED)
    # An old row with no new row of its id (the id itself was changed) counts as a change.
    return f"NOT EXISTS (SELECT 1 FROM old_rows o LEFT JOIN new_rows n ON n.id = o.id WHERE n.id IS NULL OR {differs})"


def _install_postgresql(conn: Connection, aggregates: tuple[Aggregate, ...]) -> None:
    inserted = (("new_rows", 1),)
    deleted = (("old_rows", -1),)
    updated = (("new_rows", 1), ("old_rows", -1))
    body = (
        "BEGIN IF TG_OP = 'INSERT' THEN "
        + " ".join(_pg_statements(a, inserted) for a in aggregates)
        + " ELSIF TG_OP = 'DELETE' THEN "
        + " ".join(_pg_statements(a, deleted) for a in aggregates)
        + f" ELSIF {_pg_unchanged()} THEN NULL;"
        + " ELSE "
        + " ".join(_pg_statements(a, updated) for a in aggregates)
        + " END IF; RETURN NULL; END"
    )
    conn.execute(text(f"CREATE OR REPLACE FUNCTION {_PG_FUNCTION}() RETURNS trigger LANGUAGE plpgsql AS $$ {body} $$"))
    uninstall(conn)
    for operation, referencing in (
        ("INSERT", "NEW TABLE AS new_rows"),
        ("UPDATE", "OLD TABLE AS old_rows NEW TABLE AS new_rows"),
        ("DELETE", "OLD TABLE AS old_rows"),
    ):
        name = f"kg_findings_counted_{operation.lower()}"
        conn.execute(
            text(
                f"CREATE TRIGGER {name} AFTER {operation} ON kg_findings REFERENCING {referencing} "
                f"FOR EACH STATEMENT EXECUTE FUNCTION {_PG_FUNCTION}()"
            )
        )

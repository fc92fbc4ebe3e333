"""The pre-aggregated finding counts stay exact through every way a finding changes, on both dialects.

The expected cells are computed in Python from the findings as they stand after each step (a brute-force
GROUP BY over the bodies), never read back from SQL, so a trigger that misses a move between cells, keeps
a stale latest update or leaves an empty cell behind shows up as a difference.
"""

from __future__ import annotations

from typing import Any
from unittest.mock import patch

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Column, MetaData, Table, delete, insert, select

from kubeguard.api.guardduty.statistics import GROUP_BY, count_by_severity, group, ordered
from kubeguard.findings.criteria import epoch_ms, matches
from kubeguard.store import finding_counts, finding_query, finding_statistics, schema
from kubeguard.store import findings as finding_store
from kubeguard.store.database import MIGRATIONS, migrate
from kubeguard.store.detectors import remove
from store.test_finding_queries import BASE_MS, DETECTOR, TYPES, _iso

OTHER = "e" * 32
DAY_MS = finding_counts.DAY_MS
#: Milliseconds from BASE_MS to the next midnight: findings just before and at it sit in different days.
TO_MIDNIGHT = DAY_MS - BASE_MS % DAY_MS


@st.composite
def findings(draw: Any, index: int) -> dict[str, Any]:
    offset = draw(st.sampled_from([0, 1, 999, 5_000, TO_MIDNIGHT - 1, TO_MIDNIGHT]))
    updated = BASE_MS + draw(st.integers(0, 3)) * DAY_MS + offset
    finding: dict[str, Any] = {
        "id": f"f{index:02d}",
        "type": draw(st.sampled_from(TYPES)),
        "severity": draw(st.sampled_from([2.0, 5.0, 8.0])),
        "createdAt": _iso(BASE_MS),
        "updatedAt": _iso(updated),
        "resource": {"eksClusterDetails": {"name": draw(st.sampled_from(["prod", "dev"]))}},
        "service": {
            "detectorId": draw(st.sampled_from([DETECTOR, DETECTOR, OTHER])),
            "archived": draw(st.booleans()),
            "count": 1,
            "eventFirstSeen": _iso(BASE_MS),
            "eventLastSeen": _iso(updated),
        },
    }
    account = draw(st.sampled_from([None, "", "111111111111", "222222222222"]))
    if account is not None:
        finding["accountId"] = account
    return finding


#: A change to one stored finding: (finding index, what to do, a value for it).
steps = st.lists(
    st.tuples(
        st.integers(0, 11),
        st.sampled_from(["archive", "unarchive", "feedback", "merge", "retype", "earlier", "delete", "reinsert"]),
        st.sampled_from([2.0, 5.0, 8.0]),
    ),
    max_size=12,
)


def _expected(stored: dict[str, dict[str, Any]]) -> dict[str, dict[tuple[Any, ...], tuple[int, int]]]:
    """Every counts table as Python computes it from the stored bodies."""
    cells: dict[tuple[Any, ...], list[int]] = {}
    days: dict[tuple[Any, ...], list[int]] = {}
    windows: dict[tuple[Any, ...], list[int]] = {}
    for finding in stored.values():
        service = finding["service"]
        updated = epoch_ms(finding["updatedAt"])
        account = finding.get("accountId")
        cell = (
            service["detectorId"],
            bool(service["archived"]),
            finding["type"],
            float(finding["severity"]),
            finding["resource"]["eksClusterDetails"]["name"],
            account is not None,
            account or "",
        )
        cluster = finding["resource"]["eksClusterDetails"]["name"]
        day = (service["detectorId"], bool(service["archived"]), float(finding["severity"]), cluster, updated // DAY_MS)
        window = (cell[0], updated // DAY_MS, *cell[1:])
        for table, key in ((cells, cell), (days, day), (windows, window)):
            entry = table.setdefault(key, [0, 0])
            entry[0] += 1
            entry[1] = max(entry[1], updated)
    return {
        "cells": {key: (n, latest) for key, (n, latest) in cells.items()},
        "days": {key: (n, latest) for key, (n, latest) in days.items()},
        "windows": {key: (n, latest) for key, (n, latest) in windows.items()},
    }


def _stored_cells(conn: Any) -> dict[str, dict[tuple[Any, ...], tuple[int, int]]]:
    counts, days = schema.finding_counts, schema.finding_day_counts
    result: dict[str, dict[tuple[Any, ...], tuple[int, int]]] = {"cells": {}, "days": {}, "windows": {}}
    for row in conn.execute(select(counts)):
        key = (row.detector_id, bool(row.archived), row.type, row.severity, row.cluster, bool(row.has_account))
        result["cells"][(*key, row.account_id)] = (row.findings, row.last_updated_ms)
    for row in conn.execute(select(days)):
        key = (row.detector_id, bool(row.archived), row.severity, row.cluster, row.day)
        result["days"][key] = (row.findings, row.last_updated_ms)
    for row in conn.execute(select(schema.finding_window_counts)):
        key = (row.detector_id, row.day, bool(row.archived), row.type, row.severity, row.cluster)
        result["windows"][(*key, bool(row.has_account), row.account_id)] = (row.findings, row.last_updated_ms)
    return result


def _apply(conn: Any, stored: dict[str, dict[str, Any]], index: int, action: str, value: float) -> None:
    """One change through the store's own write paths, mirrored in ``stored``."""
    ids = sorted(stored)
    if not ids:
        return
    finding = stored[ids[index % len(ids)]]
    detector = finding["service"]["detectorId"]
    if action in ("archive", "unarchive"):
        flag = action == "archive"
        finding_store.set_flag(conn, detector, [finding["id"]], lambda service: service.__setitem__("archived", flag))
        finding["service"] = {**finding["service"], "archived": flag}
    elif action == "feedback":  # changes the body only: no cell moves
        finding_store.set_flag(
            conn, detector, [finding["id"]], lambda service: service.__setitem__("userFeedback", "USEFUL")
        )
        finding["service"] = {**finding["service"], "userFeedback": "USEFUL"}
    elif action == "merge":  # a later occurrence: the recorder's upsert folds it in
        later = _iso(epoch_ms(finding["updatedAt"]) + 7)
        occurrence = {**finding, "updatedAt": later, "severity": value}
        occurrence["service"] = {**finding["service"], "eventLastSeen": later}
        stored[finding["id"]] = finding_store.upsert(conn, occurrence).finding
    elif action in ("retype", "earlier"):  # a batch rewrites the finding (write_many's update path)
        changed = dict(finding)
        if action == "retype":
            changed["type"] = TYPES[(TYPES.index(finding["type"]) + 1) % len(TYPES)]
        else:
            changed["updatedAt"] = _iso(epoch_ms(finding["updatedAt"]) - DAY_MS)
        finding_store.write_many(conn, [], [changed])
        stored[finding["id"]] = changed
    elif action == "delete":
        conn.execute(delete(schema.findings).where(schema.findings.c.id == finding["id"]))
        del stored[finding["id"]]
    else:  # the finding deleted and recorded again, as new
        conn.execute(delete(schema.findings).where(schema.findings.c.id == finding["id"]))
        finding_store.write_many(conn, [finding], [])


SETTINGS = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
finding_lists = st.integers(0, 12).flatmap(lambda n: st.tuples(*(findings(i) for i in range(n))))


@SETTINGS
@given(initial=finding_lists, changes=steps)
def test_counts_stay_exact_through_every_change(engine, initial, changes):
    stored = {f["id"]: f for f in initial}
    with engine.begin() as conn:
        conn.execute(delete(schema.findings))
        if initial:
            finding_store.write_many(conn, list(initial), [])
        assert _stored_cells(conn) == _expected(stored)
    with engine.begin() as conn:  # one transaction: the triggers see each step's statements as they come
        for index, action, value in changes:
            _apply(conn, stored, index, action, value)
            assert _stored_cells(conn) == _expected(stored), (index, action)


#: Criteria the cells answer: only archived, severity, type, cluster and account.
CELL_CRITERIA = st.dictionaries(
    st.sampled_from(["service.archived", "severity", "type", "resource.eksClusterDetails.name", "accountId"]),
    st.sampled_from(
        [
            {"eq": ["true"]},
            {"neq": ["false"]},
            {"gte": 5},
            {"lt": 8},
            {"eq": ["5", "8.0"]},
            {"eq": ["prod"]},
            {"neq": ["prod"]},
            {"eq": [TYPES[0]]},
            {"neq": [TYPES[1], ""]},
            {"eq": ["111111111111", ""]},
            {"neq": ["222222222222"]},
        ]
    ),
    max_size=3,
)


def _stored(engine, initial, changes) -> dict:
    """Store ``initial`` in an emptied table, apply ``changes``; the findings as they now are, by id."""
    stored = {f["id"]: f for f in initial}
    with engine.begin() as conn:
        conn.execute(delete(schema.findings))
        if initial:
            finding_store.write_many(conn, list(initial), [])
        for index, action, value in changes:
            _apply(conn, stored, index, action, value)
    return stored


@SETTINGS
@given(initial=finding_lists, changes=steps, criterion=CELL_CRITERIA, group_by=st.sampled_from(GROUP_BY))
def test_statistics_from_the_cells_equal_a_python_count(engine, initial, changes, criterion, group_by):
    stored = _stored(engine, initial, changes)
    # Range operators on text stay in Python (criteria_sql); the API evaluates those on streamed bodies.
    criterion = {
        field: condition for field, condition in criterion.items() if finding_statistics.in_sql({field: condition})
    }
    mine = [f for f in stored.values() if f["service"]["detectorId"] == DETECTOR]
    in_scan_order = sorted(mine, key=lambda f: (-epoch_ms(f["updatedAt"]), f["id"]))
    matched = [f for f in in_scan_order if matches(criterion, f)]
    with engine.connect() as conn:
        assert finding_query.sql_ready(conn, DETECTOR)
        assert finding_statistics.count_by_severity(conn, DETECTOR, criterion) == count_by_severity(matched)
        grouped = finding_statistics.groups(conn, DETECTOR, criterion, group_by)
    assert ordered(group_by, grouped, True) == group(matched, group_by, True)


#: ``updatedAt`` bounds at the findings' times and either side of them (a finding at a bound is in or out by
#: one millisecond), at midnight and either side of it.
_BOUNDS = st.builds(
    lambda day, offset, delta: BASE_MS - BASE_MS % DAY_MS + day * DAY_MS + offset + delta,
    st.integers(0, 5),
    st.sampled_from([0, BASE_MS % DAY_MS, BASE_MS % DAY_MS + 1, BASE_MS % DAY_MS + 999, BASE_MS % DAY_MS + 5_000]),
    st.sampled_from([-1, 0, 1]),
)
WINDOWS = st.dictionaries(
    st.sampled_from(["gt", "gte", "greaterThan", "lt", "lte", "lessThanOrEqual"]), _BOUNDS, min_size=1
)


#: More examples than the other tests: a miscounted edge needs a finding and a bound at the same midnight.
@settings(SETTINGS, max_examples=80)
@given(
    initial=finding_lists,
    changes=steps,
    window=WINDOWS,
    criterion=CELL_CRITERIA,
    group_by=st.sampled_from(GROUP_BY),
)
def test_statistics_over_an_updated_window_equal_the_plain_group_by(
    engine, initial, changes, window, criterion, group_by
):
    """Whole days from the day cells plus the edge days' findings: the same answer as grouping every
    finding in the window, in SQL (the plain GROUP BY) and in Python."""
    stored = _stored(engine, initial, changes)
    criterion = {
        field: condition for field, condition in criterion.items() if finding_statistics.in_sql({field: condition})
    }
    criterion["updatedAt"] = window
    mine = [f for f in stored.values() if f["service"]["detectorId"] == DETECTOR]
    in_scan_order = sorted(mine, key=lambda f: (-epoch_ms(f["updatedAt"]), f["id"]))
    matched = [f for f in in_scan_order if matches(criterion, f)]
    with engine.connect() as conn:
        windowed = finding_statistics._windowed(conn, DETECTOR, criterion, group_by)
        by_severity = finding_statistics.count_by_severity(conn, DETECTOR, criterion)
        grouped = finding_statistics.groups(conn, DETECTOR, criterion, group_by)
        with patch.object(finding_statistics, "_windowed", lambda *_: None):
            plain = finding_statistics.groups(conn, DETECTOR, criterion, group_by)
            plain_by_severity = finding_statistics.count_by_severity(conn, DETECTOR, criterion)
    low = max([v + (k in ("gt", "greaterThan")) for k, v in window.items() if k.startswith("g")], default=None)
    high = min([v - (k == "lt") for k, v in window.items() if k.startswith("l")], default=None)
    length = None if low is None or high is None else high - low + 1
    day_fields = {"service.archived", "severity", "resource.eksClusterDetails.name", "updatedAt"}
    cells_know = group_by != "DATE" or set(criterion) <= day_fields
    if cells_know and (length is None or length >= 2 * DAY_MS):  # holds a whole day: from the cells
        assert windowed is not None
    if length is not None and length < DAY_MS:
        assert windowed is None
    assert grouped == plain
    assert by_severity == plain_by_severity == count_by_severity(matched)
    assert ordered(group_by, grouped, True) == group(matched, group_by, True)


def test_every_window_edge_at_midnight_counts_its_findings_once(engine):
    """Findings a millisecond before, at and after three midnights and at a quarter and three quarters of
    each day; every window between bounds on that grid, through each operator, answers as the plain GROUP
    BY and as Python do. Bounds a quarter into a day subtract the day's rest from its cells (a first day
    read from the cells, a last day whose subtracted part may hold the latest update)."""
    midnight = BASE_MS - BASE_MS % DAY_MS + DAY_MS
    quarters = (-1, 0, 1, DAY_MS // 4, 3 * DAY_MS // 4)
    times = [midnight + day * DAY_MS + delta for day in range(3) for delta in quarters]
    stored = [
        {
            "id": f"f{index}",
            "type": TYPES[index % len(TYPES)],
            "severity": [2.0, 5.0, 8.0][index % 3],
            "accountId": ["111111111111", "222222222222"][index % 2],
            "createdAt": _iso(BASE_MS),
            "updatedAt": _iso(updated),
            "resource": {"eksClusterDetails": {"name": ["prod", "dev"][index % 2]}},
            "service": {"detectorId": DETECTOR, "archived": False, "count": 1, "eventLastSeen": _iso(updated)},
        }
        for index, updated in enumerate(times)
    ]
    with engine.begin() as conn:
        finding_store.write_many(conn, stored, [])
    bounds = sorted(
        {midnight + day * DAY_MS + delta + shift for day in range(-1, 3) for delta in quarters for shift in (0, 1)}
    )
    windows = [{"gte": low, "lte": high} for low in bounds for high in bounds if high - low > DAY_MS]
    windows += [{"gt": bound} for bound in bounds] + [{"lt": bound} for bound in bounds]
    extremes = (-(2**63), -(2**63) + 1, 2**63 - 2, 2**63 - 1)  # the 64-bit operands criteria.validate allows
    windows += [{operator: bound} for operator in ("gt", "gte", "lt", "lte") for bound in extremes]
    from_cells = 0
    with engine.connect() as conn:
        for window in windows:
            criterion = {"updatedAt": window}
            matched = [f for f in stored if matches(criterion, f)]
            for group_by in GROUP_BY:
                windowed = finding_statistics._windowed(conn, DETECTOR, criterion, group_by)
                from_cells += windowed is not None
                with patch.object(finding_statistics, "_windowed", lambda *_: None):
                    plain = finding_statistics.groups(conn, DETECTOR, criterion, group_by)
                assert (windowed if windowed is not None else plain) == plain, (window, group_by)
                assert ordered(group_by, plain, True) == group(matched, group_by, True), (window, group_by)
    assert from_cells > len(windows) * len(GROUP_BY) // 2  # most windows hold a whole day


def _plain_finding(finding_id: str, detector: str = DETECTOR) -> dict[str, Any]:
    """One open finding of ``detector``: type TYPES[0], severity 5, cluster prod, no account, all at BASE_MS."""
    return {
        "id": finding_id,
        "type": TYPES[0],
        "severity": 5.0,
        "createdAt": _iso(BASE_MS),
        "updatedAt": _iso(BASE_MS),
        "resource": {"eksClusterDetails": {"name": "prod"}},
        "service": {"detectorId": detector, "archived": False, "count": 1, "eventLastSeen": _iso(BASE_MS)},
    }


def test_removing_a_detector_removes_its_cells_only(engine):
    mine, theirs = (_plain_finding(f"f-{detector[0]}", detector) for detector in (DETECTOR, OTHER))
    with engine.begin() as conn:
        finding_store.write_many(conn, [mine, theirs], [])
        remove(conn, DETECTOR)
        assert _stored_cells(conn) == _expected({theirs["id"]: theirs})


def test_an_existing_store_gets_its_cells_counted_on_upgrade(engine):
    """Upgrade from version 11: the counts are built from the findings already stored, then kept."""
    finding = {
        "id": "f1",
        "type": TYPES[1],
        "severity": 8.0,
        "accountId": "111111111111",
        "createdAt": _iso(BASE_MS),
        "updatedAt": _iso(BASE_MS + 5),
        "resource": {"eksClusterDetails": {"name": "prod"}},
        "service": {"detectorId": DETECTOR, "archived": False, "count": 2, "eventLastSeen": _iso(BASE_MS + 5)},
    }
    with engine.begin() as conn:
        schema.findings.drop(conn)  # drops the triggers with it, as a version-10 store has none
        for table in (schema.finding_counts, schema.finding_day_counts, schema.finding_window_counts):
            table.drop(conn)
        # A version-11 table: text columns without the code-point collation that version 12 adds.
        plain = Table(
            schema.findings.name,
            MetaData(),
            *(
                Column(c.name, _plain(c.type), primary_key=c.primary_key, nullable=c.nullable)
                for c in schema.findings.columns
            ),
        )
        plain.create(conn)
        conn.execute(insert(plain).values(**finding_store.row_values(finding)))
        conn.execute(schema.schema_version.delete().where(schema.schema_version.c.version > 11))
    assert migrate(engine) == MIGRATIONS[-1][0]
    with engine.begin() as conn:
        assert _stored_cells(conn) == _expected({"f1": finding})
        finding_store.set_flag(conn, DETECTOR, ["f1"], lambda service: service.__setitem__("archived", True))
        archived = {**finding, "service": {**finding["service"], "archived": True}}
        assert _stored_cells(conn) == _expected({"f1": archived})
        if conn.dialect.name == "postgresql":
            collations = dict(
                conn.exec_driver_sql(
                    "SELECT column_name, collation_name FROM information_schema.columns "
                    "WHERE table_schema = current_schema() AND table_name = 'kg_findings'"
                ).all()
            )
            assert {collations[name] for name in ("id", "type", "cluster", "username")} == {"C"}


def _plain(kind: Any) -> Any:
    from sqlalchemy import String

    return String(kind.length) if isinstance(kind, String) else kind


def test_a_store_made_by_create_all_alone_keeps_its_counts(tmp_path):
    """However a new store is made (a migration, or every table created at once), the triggers come with it."""
    from sqlalchemy import create_engine

    engine = create_engine(f"sqlite:///{tmp_path / 'fresh.db'}")
    schema.metadata.create_all(engine)
    finding = _plain_finding("f1")
    with engine.begin() as conn:
        finding_store.write_many(conn, [finding], [])
        assert _stored_cells(conn) == _expected({"f1": finding})
    engine.dispose()

"""The SQL query path gives the evaluator's answers: random findings, random criteria, both dialects.

The expected answer is always computed the old way, with :func:`kubeguard.findings.criteria.matches`
over every finding and the API's Python sort and statistics, so a translation slip in either dialect
(a null, a collation, a number read from text) shows up as a difference.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Column, MetaData, Table, delete, insert, select

from kubeguard.api.guardduty.findings import sorted_findings
from kubeguard.api.guardduty.statistics import GROUP_BY, count_by_severity, group, ordered
from kubeguard.findings.criteria import epoch_ms, matches
from kubeguard.store import finding_query, finding_statistics, schema
from kubeguard.store.database import MIGRATIONS, migrate
from kubeguard.store.finding_columns import FIELD_COLUMNS
from kubeguard.store.findings import row_values

DETECTOR = "d" * 32
BASE_MS = 1_715_000_000_000
USERS = ["alice", "bob", "system:serviceaccount:kube-system:default", "Zed", "émile"]
TYPES = ["Discovery:Kubernetes/AnomalousBehavior.PermissionChecked", "Execution:Kubernetes/ExecInKubeSystemPod", "B"]


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@st.composite
def findings(draw: Any, index: int) -> dict[str, Any]:
    created = BASE_MS + draw(st.integers(0, 3)) * 86_400_000 + draw(st.sampled_from([0, 1, 999]))
    updated = created + draw(st.sampled_from([0, 5, 90_000_000]))
    service: dict[str, Any] = {
        "detectorId": DETECTOR,
        "archived": draw(st.booleans()),
        "count": draw(st.integers(1, 4)),
        "eventLastSeen": _iso(updated),
        "action": {"kubernetesApiCallAction": {"verb": draw(st.sampled_from(["get", "create", "delete"]))}},
    }
    if draw(st.booleans()):
        service["eventFirstSeen"] = _iso(created)
    kubernetes: dict[str, Any] = {}
    if draw(st.booleans()):
        kubernetes["kubernetesUserDetails"] = {"username": draw(st.sampled_from(USERS))}
    if draw(st.booleans()):
        kubernetes["kubernetesWorkloadDetails"] = {"namespace": draw(st.sampled_from(["default", "kube-system", ""]))}
    finding: dict[str, Any] = {
        "id": f"{index:02d}{draw(st.sampled_from(['a', 'b', 'c']))}",
        "type": draw(st.sampled_from(TYPES)),
        "severity": draw(st.sampled_from([2.0, 5.0, 5.5, 8.0])),
        "createdAt": _iso(created),
        "updatedAt": _iso(updated),
        "resource": {
            "resourceType": "EKSCluster",
            "eksClusterDetails": {"name": draw(st.sampled_from(["prod", "dev", "Prod"]))},
            "kubernetesDetails": kubernetes,
        },
        "service": service,
    }
    if draw(st.booleans()):
        finding["accountId"] = draw(st.sampled_from(["111111111111", "222222222222", ""]))
    return finding


finding_lists = st.integers(0, 14).flatmap(lambda n: st.tuples(*(findings(i) for i in range(n))))

#: Operand pools per field: text that is and is not there, numbers spelt the ways people spell them.
TEXT_VALUES = st.sampled_from(["prod", "Prod", "alice", "Zed", "émile", "", "default", "EKSCluster", *TYPES])
NUMBER_TEXT = st.sampled_from(["5", "5.0", "5.5", " 8 ", "2e0", "nan", "inf", "x", "1_0", "true", "2", "3"])
BOOL_TEXT = st.sampled_from(["true", "TRUE", "false", "False", "yes", "1"])
RESIDUAL_FIELDS = ["service.action.kubernetesApiCallAction.verb", "id", "Severity"]


@st.composite
def conditions(draw: Any, field: str) -> dict[str, Any]:
    kind = FIELD_COLUMNS[field].kind if field in FIELD_COLUMNS else "text"
    if kind == "timestamp":
        numbers = st.integers(BASE_MS - 1, BASE_MS + 5 * 86_400_000)
        eq_values = st.lists(st.sampled_from([str(BASE_MS), str(BASE_MS + 999), "x", str(BASE_MS + 86_400_000)]))
    else:
        numbers = st.integers(-1, 9) | st.sampled_from([2**63 - 1, -(2**63)])
        eq_values = st.lists({"text": TEXT_VALUES | NUMBER_TEXT, "bool": BOOL_TEXT}.get(kind, NUMBER_TEXT), max_size=3)
    operators = draw(
        st.lists(
            st.sampled_from(["eq", "neq", "gt", "gte", "lt", "lte", "greaterThan", "lessThanOrEqual"]),
            min_size=1,
            max_size=2,
            unique=True,
        )
    )
    return {op: draw(eq_values if op in ("eq", "neq") else numbers) for op in operators}


@st.composite
def criteria(draw: Any) -> dict[str, dict[str, Any]]:
    fields = draw(st.lists(st.sampled_from([*FIELD_COLUMNS, *RESIDUAL_FIELDS]), max_size=3, unique=True))
    return {field: draw(conditions(field)) for field in fields}


def _store(engine: Any, stored: tuple[dict[str, Any], ...]) -> None:
    with engine.begin() as conn:
        conn.execute(delete(schema.findings))
        if stored:
            conn.execute(insert(schema.findings), [row_values(f) for f in stored])
            assert finding_query.sql_ready(conn, DETECTOR)


SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@SETTINGS
@given(
    stored=finding_lists,
    criterion=criteria(),
    attribute=st.sampled_from(list(FIELD_COLUMNS)),
    descending=st.booleans(),
    limit=st.integers(1, 4),
)
def test_list_pages_match_the_evaluator(engine, stored, criterion, attribute, descending, limit):
    _store(engine, stored)
    expected = [f["id"] for f in sorted_findings([f for f in stored if matches(criterion, f)], attribute, descending)]
    order = finding_query.Order(attribute, descending, id_descending=descending)
    got: list[str] = []
    position = None
    with engine.connect() as conn:
        for _ in range(len(stored) + 1):
            ids, position = finding_query.page(conn, DETECTOR, criterion, order, position, limit)
            got.extend(ids)
            assert len(ids) <= limit
            if position is None:
                break
            position = finding_query.Position.from_json(orjson.loads(orjson.dumps(position.to_json())))
    assert got == expected


@SETTINGS
@given(stored=finding_lists, criterion=criteria(), group_by=st.sampled_from(GROUP_BY), descending=st.booleans())
def test_statistics_match_the_evaluator(engine, stored, criterion, group_by, descending):
    _store(engine, stored)
    # The old path aggregated in the store's scan order (latest update first, then id), which decides the
    # accountId a RESOURCE group reports.
    in_scan_order = sorted(stored, key=lambda f: (-epoch_ms(f["updatedAt"]), f["id"]))
    matched = [f for f in in_scan_order if matches(criterion, f)]
    sql_only = {f: c for f, c in criterion.items() if finding_statistics.in_sql({f: c})}
    matched_sql = [f for f in in_scan_order if matches(sql_only, f)]
    with engine.connect() as conn:
        assert finding_statistics.count_by_severity(conn, DETECTOR, sql_only) == count_by_severity(matched_sql)
        grouped = finding_statistics.groups(conn, DETECTOR, sql_only, group_by)
        assert ordered(group_by, grouped, descending) == group(matched_sql, group_by, descending)
        order = finding_query.Order("updatedAt", descending=True, id_descending=False)
        streamed = [body for _, body in finding_query.stream(conn, DETECTOR, criterion, order, bodies=True)]
    assert group(streamed, group_by, descending) == group(matched, group_by, descending)


def test_irregular_rows_are_marked_and_keep_the_detector_off_the_sql_path(engine):
    regular = {
        "id": "r1",
        "type": TYPES[0],
        "severity": 5.0,
        "createdAt": _iso(BASE_MS),
        "updatedAt": _iso(BASE_MS),
        "resource": {"eksClusterDetails": {"name": "prod"}},
        "service": {"detectorId": DETECTOR, "archived": False, "count": 1, "eventLastSeen": _iso(BASE_MS)},
    }
    assert row_values(regular)["regular"] is True
    odd = [
        {**regular, "id": "x1", "updatedAt": "yesterday"},
        {**regular, "id": "x2", "accountId": 123456789012},
        {**regular, "id": "x3", "resource": {"eksClusterDetails": {}}},
        {**regular, "id": "x4", "resource": {"eksClusterDetails": {"name": "a\x00b"}}},
    ]
    assert [row_values(f)["regular"] for f in odd] == [False] * len(odd)
    _store(engine, (regular,))
    with engine.begin() as conn:
        conn.execute(insert(schema.findings), [row_values(odd[0])])
        assert not finding_query.sql_ready(conn, DETECTOR)
        assert finding_query.sql_ready(conn, "other")


def test_a_store_from_before_the_query_columns_gains_them_backfilled(engine):
    """Upgrade: the version-7 columns are added to an existing table and filled from each stored body."""
    finding = {
        "id": "f1",
        "type": TYPES[1],
        "severity": 8.0,
        "accountId": "111111111111",
        "createdAt": _iso(BASE_MS),
        "updatedAt": _iso(BASE_MS + 5),
        "resource": {
            "resourceType": "EKSCluster",
            "eksClusterDetails": {"name": "prod"},
            "kubernetesDetails": {"kubernetesUserDetails": {"username": "alice"}},
        },
        "service": {
            "detectorId": DETECTOR,
            "archived": False,
            "count": 2,
            "eventLastSeen": _iso(BASE_MS + 5),
            "eventFirstSeen": _iso(BASE_MS),
        },
    }
    new_columns = ["account_id", "event_first_seen_ms", "username", "namespace", "resource_type", "regular"]
    with engine.begin() as conn:
        schema.findings.drop(conn)
        legacy = Table(
            schema.findings.name,
            MetaData(),
            *(
                Column(c.name, c.type, primary_key=c.primary_key, nullable=c.nullable)
                for c in schema.findings.columns
                if c.name not in new_columns
            ),
        )
        legacy.create(conn)
        values = {k: v for k, v in row_values(finding).items() if k not in new_columns}
        conn.execute(insert(legacy).values(**values))
        conn.execute(schema.schema_version.delete().where(schema.schema_version.c.version > 2))
    assert migrate(engine) == MIGRATIONS[-1][0]
    with engine.connect() as conn:
        row = conn.execute(select(schema.findings)).one()._mapping
        assert {name: row[name] for name in new_columns} == {
            "account_id": "111111111111",
            "event_first_seen_ms": BASE_MS,
            "username": "alice",
            "namespace": None,
            "resource_type": "EKSCluster",
            "regular": True,
        }
        assert finding_query.page(
            conn,
            DETECTOR,
            {"resource.kubernetesDetails.kubernetesUserDetails.username": {"eq": ["alice"]}},
            finding_query.Order("updatedAt", True, True),
            None,
            10,
        ) == (["f1"], None)


def test_values_longer_than_their_columns_are_stored_cut_and_answered_by_the_evaluator(engine):
    """A username or namespace longer than its column (an authenticator may return any name) is stored
    cut, instead of PostgreSQL refusing the row and the batch with it; the row is then irregular, so lists
    filtered on the field are answered from the whole finding, which keeps the full value."""
    long_user, long_namespace = "u" * 700, "n" * 300
    finding = {
        "id": "long1",
        "type": TYPES[0],
        "severity": 5.0,
        "createdAt": _iso(BASE_MS),
        "updatedAt": _iso(BASE_MS),
        "resource": {
            "eksClusterDetails": {"name": "c" * 300},
            "kubernetesDetails": {
                "kubernetesUserDetails": {"username": long_user},
                "kubernetesWorkloadDetails": {"namespace": long_namespace},
            },
        },
        "service": {"detectorId": DETECTOR, "archived": False, "count": 1, "eventLastSeen": _iso(BASE_MS)},
    }
    values = row_values(finding)
    assert values["regular"] is False
    assert (len(values["username"]), len(values["namespace"]), len(values["cluster"])) == (512, 255, 255)
    with engine.begin() as conn:
        conn.execute(delete(schema.findings))
        conn.execute(insert(schema.findings), [values])
        assert not finding_query.sql_ready(conn, DETECTOR)
    criterion = {"resource.kubernetesDetails.kubernetesUserDetails.username": {"eq": [long_user]}}
    assert matches(criterion, finding)
    with engine.connect() as conn:
        stored = orjson.loads(conn.execute(select(schema.findings.c.body)).scalar_one())
    assert stored == finding

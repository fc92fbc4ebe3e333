"""The findings list counted, grouped, sorted and paged in SQL equals the list built in Python from the
bodies (the path free text still takes), for every sort and filter, on both databases."""

from __future__ import annotations

import random

import pytest
from sqlalchemy import Engine, delete, select

from kubeguard.api.console import data
from kubeguard.graph.queries import DAY_MS, iso
from kubeguard.store import finding_query, schema
from kubeguard.store import findings as finding_store

BASE_MS = 1_790_000_000_000  # 2026-09-21
TYPES = ["Discovery:Kubernetes/A", "Impact:Kubernetes/B", "Policy:Kubernetes/C", "Execution:Kubernetes/D"]


def _finding(number: int, rng: random.Random) -> dict:
    updated = BASE_MS + rng.randrange(0, 20) * DAY_MS // 4  # repeated times, so ties are sorted too
    service = {"detectorId": "d" * 32, "count": rng.choice([1, 1, 2, 7]), "archived": rng.random() < 0.2,
               "eventLastSeen": iso(updated)}
    if rng.random() < 0.8:  # a few findings carry no first event time
        service["eventFirstSeen"] = iso(updated - rng.randrange(0, 3) * DAY_MS)
    return {
        "id": f"{rng.getrandbits(64):032x}",
        "type": rng.choice(TYPES),
        "severity": rng.choice([2.0, 5.0, 8.0, 8.0, 9.0]),
        "title": f"finding {number}",
        "createdAt": iso(updated - DAY_MS),
        "updatedAt": iso(updated),
        "resource": {
            "eksClusterDetails": {"name": rng.choice(["lab", "prod"])},
            "kubernetesDetails": {"kubernetesUserDetails": {"username": rng.choice(["alice", "bob"])}},
        },
        "service": service,
    }


@pytest.mark.parametrize("sort", sorted(data.SORTS))
def test_the_list_in_sql_equals_the_list_in_python(engine: Engine, sort: str, monkeypatch) -> None:
    rng = random.Random(sort)
    with engine.begin() as conn:
        for number in range(130):
            finding_store.upsert(conn, _finding(number, rng))
    filters = [{}, {"archived": "true"}, {"archived": "any"}, {"severity": "high"}, {"type": TYPES[1]},
               {"cluster": "prod", "subject": "alice"}, {"severity": "critical", "cluster": "lab"}]
    with engine.connect() as conn:
        assert finding_query.sql_ready(conn, None)
        in_sql = [data.findings_list(conn, chosen, page, sort) for chosen in filters for page in (1, 2, 3)]
        monkeypatch.setattr(data.finding_query, "sql_ready", lambda conn, detector: False)  # the Python path
        in_python = [data.findings_list(conn, chosen, page, sort) for chosen in filters for page in (1, 2, 3)]
    assert in_sql == in_python
    assert in_sql[0]["total"] > data.PAGE_SIZE and in_sql[1]["findings"]  # more than a page, a second page shown


def _plain_count_sort(monkeypatch) -> None:
    monkeypatch.setattr(data, "_page_by_count", lambda conn, criterion, offset: None)


@pytest.mark.parametrize("severities", [[2.0, 5.0, 8.0, 8.0, 9.0], [round(1 + n / 10, 1) for n in range(90)]])
def test_the_count_sort_merged_per_severity_equals_one_order_by(engine: Engine, severities, monkeypatch) -> None:
    """The count sort merged from one index walk per (archived, severity) value (few values) and the one
    ORDER BY it replaces (the path a store with many values still takes) give the same pages, ties in
    count and update time included."""
    rng = random.Random(len(severities))
    with engine.begin() as conn:
        for number in range(300):
            finding = _finding(number, rng)
            finding["severity"] = rng.choice(severities)
            finding_store.upsert(conn, finding)
    filters = [{}, {"severity": "high"}, {"severity": "medium"}, {"archived": "true"}, {"archived": "any"},
               {"severity": "critical", "archived": "any"}]
    calls = []
    merge = data._page_by_count
    monkeypatch.setattr(data, "_page_by_count", lambda *args: calls.append(merge(*args)) or calls[-1])
    with engine.connect() as conn:
        merged = [data.findings_list(conn, chosen, page, "count") for chosen in filters for page in (1, 2, 4, 7)]
        _plain_count_sort(monkeypatch)
        plain = [data.findings_list(conn, chosen, page, "count") for chosen in filters for page in (1, 2, 4, 7)]
    assert merged == plain
    assert merged[0]["findings"] and merged[1]["findings"]
    if len(set(severities)) <= data.MERGED_VALUES_AT_MOST:
        assert calls and None not in calls, "the merge answered every page"
    else:
        assert None in calls, "too many values: one ORDER BY"


def test_a_filter_beyond_severity_and_archived_is_sorted_in_one_query(engine: Engine) -> None:
    with engine.connect() as conn:
        assert data._page_by_count(conn, {"type": {"eq": [TYPES[0]]}}, 0) is None


def test_the_filter_choices_are_every_type_and_cluster_a_stored_finding_has(engine: Engine) -> None:
    """Read from the count cells: the same values as the findings themselves, archived ones included, and a
    value whose last finding is deleted is offered no more."""
    rng = random.Random(7)
    findings = [_finding(number, rng) for number in range(40)]
    findings[0]["type"] = "Execution:Kubernetes/OnlyOnce"
    findings[0]["resource"]["eksClusterDetails"]["name"] = "staging"
    findings[1]["type"] = "Discovery:Kubernetes/ArchivedOnly"
    findings[1]["service"]["archived"] = True
    with engine.begin() as conn:
        for finding in findings:
            finding_store.upsert(conn, finding)
    def distinct(column):
        return sorted({row[0] for row in conn.execute(select(column))})

    with engine.connect() as conn:
        facets = data._facets(conn)
        assert facets == {"types": distinct(schema.findings.c.type), "clusters": distinct(schema.findings.c.cluster)}
    assert "Execution:Kubernetes/OnlyOnce" in facets["types"] and "Discovery:Kubernetes/ArchivedOnly" in facets["types"]
    with engine.begin() as conn:
        conn.execute(delete(schema.findings).where(schema.findings.c.id == findings[0]["id"]))
    with engine.connect() as conn:
        facets = data._facets(conn)
        assert facets == {"types": distinct(schema.findings.c.type), "clusters": distinct(schema.findings.c.cluster)}
    assert "staging" not in facets["clusters"] and "Execution:Kubernetes/OnlyOnce" not in facets["types"]

"""The summary page's counts, computed in SQL, equal a count over the stored finding bodies.

The reference below is what the summary did before it counted in SQL: read every body, take its time
(last event, else last update), keep the open findings in scope, bucket them by day and severity.
"""

from __future__ import annotations

import random
from collections import Counter

import pytest
from sqlalchemy import Engine

from kubeguard.api.console import data
from kubeguard.graph.queries import DAY_MS, iso
from kubeguard.severity import label
from kubeguard.store import findings as finding_store

BASE_MS = 1_790_000_000_000  # 2026-09-21


def _finding(number: int, rng: random.Random) -> dict:
    last_seen = BASE_MS + rng.randrange(-40 * DAY_MS, 2 * DAY_MS)
    service = {"detectorId": "d" * 32, "count": 1, "archived": rng.random() < 0.2}
    if rng.random() < 0.85:  # a few findings carry no event time: their update time stands in
        service["eventLastSeen"] = iso(last_seen)
    return {
        "id": f"{number:032x}",
        "type": rng.choice(["Discovery:Kubernetes/A", "Impact:Kubernetes/B", "Policy:Kubernetes/C"]),
        "severity": rng.choice([2.0, 5.0, 5.5, 8.0, 9.0]),
        "title": "t",
        "createdAt": iso(last_seen),
        "updatedAt": iso(last_seen + rng.randrange(0, 3 * DAY_MS)),
        "resource": {"eksClusterDetails": {"name": rng.choice(["lab", "prod", ""])}},
        "service": service,
    }


def _reference(findings: list[dict], start_ms: int, end_ms: int, bucket_ms: int) -> dict:
    days = list(range(start_ms - start_ms % DAY_MS, end_ms, bucket_ms))
    by_day = {severity: [0] * len(days) for severity in data.SEVERITIES}
    by_type: Counter[str] = Counter()
    by_cluster: Counter[str] = Counter()
    in_scope = []
    for finding in findings:
        when = data.finding_time_ms(finding)
        if not start_ms <= when < end_ms or finding["service"]["archived"]:
            continue
        in_scope.append(finding)
        index = (when - days[0]) // bucket_ms
        if 0 <= index < len(days):
            by_day[label(finding["severity"])][index] += 1
        by_type[finding["type"]] += 1
        by_cluster[finding["resource"]["eksClusterDetails"]["name"]] += 1
    high = sorted((f for f in in_scope if f["severity"] >= 7), key=lambda f: (-data.finding_time_ms(f), f["id"]))
    return {"by_day": by_day, "by_type": dict(by_type), "by_cluster": dict(by_cluster),
            "high": [f["id"] for f in high[:10]], "in_scope": len(in_scope)}


@pytest.mark.parametrize("seed", [1, 2])
def test_summary_counts_equal_a_count_over_the_bodies(engine: Engine, seed: int) -> None:
    rng = random.Random(seed)
    findings = [_finding(number, rng) for number in range(300)]
    with engine.begin() as conn:
        for finding in findings:
            finding_store.upsert(conn, finding)
    for start, end in ((None, None), (iso(BASE_MS - 20 * DAY_MS), iso(BASE_MS)), (iso(BASE_MS - 100 * DAY_MS), iso(BASE_MS + 3 * DAY_MS))):
        with engine.connect() as conn:
            view = data.summary(conn, start, end, {})
        start_ms = data.epoch_ms(view["scope"]["start"])
        end_ms = data.epoch_ms(view["scope"]["end"])
        expected = _reference(findings, start_ms, end_ms, view["bucketDays"] * DAY_MS)
        assert view["findingsByDay"] == expected["by_day"]
        assert dict(view["byType"]) == expected["by_type"]
        assert dict(view["byCluster"]) == expected["by_cluster"]
        assert [line["id"] for line in view["newestHigh"]] == expected["high"]
        assert view["findingsInScope"] == expected["in_scope"] > 0
        assert view["findingsTotal"] == len(findings)


def test_default_scope_reaches_back_to_each_clusters_newest_open_finding(engine: Engine) -> None:
    rng = random.Random(3)
    findings = [_finding(number, rng) for number in range(60)]
    old = _finding(999, rng)
    old["resource"]["eksClusterDetails"]["name"] = "imported"
    old["service"]["archived"] = False
    old["service"]["eventLastSeen"] = iso(BASE_MS - 200 * DAY_MS)
    with engine.begin() as conn:
        for finding in [*findings, old]:
            finding_store.upsert(conn, finding)
    with engine.connect() as conn:
        newest = data.newest_open_by_cluster(conn)
        view = data.summary(conn, None, None, {})
    assert newest["imported"] == BASE_MS - 200 * DAY_MS
    assert data.epoch_ms(view["scope"]["start"]) <= BASE_MS - 200 * DAY_MS
    assert "imported" in dict(view["byCluster"])

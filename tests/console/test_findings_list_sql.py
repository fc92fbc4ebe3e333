"""The findings list counted, grouped, sorted and paged in SQL equals the list built in Python from the
bodies (the path free text still takes), for every sort and filter, on both databases."""

from __future__ import annotations

import random

import pytest
from sqlalchemy import Engine

from kubeguard.api.console import data
from kubeguard.graph.queries import DAY_MS, iso
from kubeguard.store import finding_query
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

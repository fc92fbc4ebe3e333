"""The suppression form's preview (how many findings a criterion matches), counted in SQL (from the count
cells, or over the finding columns), equals a plain count of the stored bodies with the criteria
evaluator; criteria or findings SQL cannot answer exactly take the evaluator's path and give the same
numbers."""

from __future__ import annotations

import random

from sqlalchemy import Engine, update

from kubeguard.api.console import data
from kubeguard.findings.criteria import matches
from kubeguard.store import finding_query, schema
from kubeguard.store import findings as finding_store

TYPES = ["Discovery:Kubernetes/A", "Impact:Kubernetes/B", "Policy:Kubernetes/C"]
CRITERIA = [
    # Fields the pre-aggregated cells keep: summed from them.
    {"type": {"eq": [TYPES[0]]}},
    {"severity": {"gte": 5}, "resource.eksClusterDetails.name": {"neq": ["prod"]}},
    {"service.archived": {"eq": ["true"]}, "type": {"neq": [TYPES[1]]}},
    # The subject is not in the cells: counted over the findings' columns.
    {"type": {"eq": [TYPES[1]]}, data.USERNAME: {"eq": ["alice"]}, "resource.eksClusterDetails.name": {"eq": ["lab"]}},
    {data.USERNAME: {"eq": ["bob", "carol"]}},
    {"type": {"eq": [TYPES[2]]}, "resource.eksClusterDetails.name": {"eq": ["nowhere"]}},
    # No column for the API call's namespace: the evaluator answers.
    {"type": {"eq": [TYPES[0]]}, data.NAMESPACE: {"eq": ["dev"]}},
]


def _finding(number: int, rng: random.Random) -> dict:
    return {
        "id": f"{number:032x}",
        "type": rng.choice(TYPES),
        "severity": rng.choice([2.0, 5.0, 8.0]),
        "createdAt": "2026-11-20T11:00:00.000Z",
        "updatedAt": "2026-11-20T12:00:00.000Z",
        "resource": {
            "eksClusterDetails": {"name": rng.choice(["lab", "prod"])},
            "kubernetesDetails": {"kubernetesUserDetails": {"username": rng.choice(["alice", "bob", "carol"])}},
        },
        "service": {
            "detectorId": "d" * 32,
            "count": rng.randrange(1, 5),
            "eventFirstSeen": "2026-11-20T11:00:00.000Z",
            "eventLastSeen": "2026-11-20T12:00:00.000Z",
            "archived": rng.random() < 0.3,
            "action": {"kubernetesApiCallAction": {"namespace": rng.choice(["dev", "prod"])}},
        },
    }


def _plain(findings: list[dict], criterion: dict, archived: bool | None) -> int:
    return sum(
        1
        for finding in findings
        if matches(criterion, finding) and (archived is None or finding["service"]["archived"] == archived)
    )


def test_the_preview_counts_what_the_evaluator_counts(engine: Engine) -> None:
    rng = random.Random(3)
    findings = [_finding(number, rng) for number in range(400)]
    with engine.begin() as conn:
        for finding in findings:
            finding_store.upsert(conn, finding)
    with engine.connect() as conn:
        assert finding_query.sql_ready(conn, None)  # as kubeguard writes them: SQL counts them
    for irregular in (False, True):
        if irregular:  # one finding whose columns the store does not trust: every count reads bodies
            with engine.begin() as conn:
                conn.execute(update(schema.findings).where(schema.findings.c.id == findings[0]["id"]).values(regular=False))
        with engine.connect() as conn:
            for criterion in CRITERIA:
                for archived in (False, True, None):
                    expected = _plain(findings, criterion, archived)
                    assert data.count_matching(conn, criterion, archived=archived) == expected, (criterion, archived)
    assert _plain(findings, CRITERIA[1], False) > 0 and _plain(findings, CRITERIA[4], None) > 0

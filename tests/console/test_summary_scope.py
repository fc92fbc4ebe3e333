"""The summary's default scope: the week up to the newest activity, widened to each cluster's newest open
finding, so that a cluster whose logs are months older than another's is not left out."""

from __future__ import annotations

from kubeguard.api.console.data import default_summary_scope
from kubeguard.findings.criteria import epoch_ms
from kubeguard.graph.queries import iso


def _finding(cluster: str, last_seen: str, archived: bool = False) -> dict:
    return {"resource": {"eksClusterDetails": {"name": cluster}},
            "service": {"eventLastSeen": last_seen, "archived": archived},
            "id": cluster + last_seen, "type": "T", "severity": 5}


def _scope(findings: list[dict], latest: str) -> tuple[str, str]:
    """The scope over these findings, each cluster's newest open finding computed by hand."""
    newest: dict[str, int] = {}
    for finding in findings:
        if not finding["service"]["archived"]:
            cluster = finding["resource"]["eksClusterDetails"]["name"]
            newest[cluster] = max(newest.get(cluster, 0), epoch_ms(finding["service"]["eventLastSeen"]))
    scope = default_summary_scope(newest, epoch_ms(latest))
    return iso(scope.start_ms), iso(scope.end_ms)


def test_one_cluster_opens_on_the_week_up_to_its_newest_activity():
    assert _scope([_finding("lab", "2026-11-27T17:48:00Z")], "2026-11-27T17:48:13Z") == (
        "2026-11-21T00:00:00Z", "2026-11-28T00:00:00Z")


def test_a_cluster_months_older_widens_it_to_its_own_week():
    findings = [_finding("lab", "2026-11-27T17:48:00Z"), _finding("prod-euw1", "2026-01-14T11:00:33Z")]
    assert _scope(findings, "2026-11-27T17:48:13Z") == ("2026-01-08T00:00:00Z", "2026-11-28T00:00:00Z")


def test_archived_findings_do_not_widen_it_and_a_year_is_the_most():
    archived = [_finding("lab", "2026-11-27T17:48:00Z"), _finding("old", "2026-01-14T11:00:33Z", archived=True)]
    assert _scope(archived, "2026-11-27T17:48:13Z")[0] == "2026-11-21T00:00:00Z"
    ancient = [_finding("lab", "2026-11-27T17:48:00Z"), _finding("old", "2024-01-14T11:00:33Z")]
    start, end = _scope(ancient, "2026-11-27T17:48:13Z")
    assert (epoch_ms(end) - epoch_ms(start)) // 86_400_000 == 364

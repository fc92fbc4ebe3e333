"""GetFindingsStatistics: the legacy ``countBySeverity`` and the ``groupBy`` aggregations."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from kubeguard.findings.criteria import epoch_ms

GROUP_BY = ("ACCOUNT", "DATE", "FINDING_TYPE", "RESOURCE", "SEVERITY")
RESPONSE_KEY = {
    "ACCOUNT": "groupedByAccount",
    "DATE": "groupedByDate",
    "FINDING_TYPE": "groupedByFindingType",
    "RESOURCE": "groupedByResource",
    "SEVERITY": "groupedBySeverity",
}


def count_by_severity(findings: Iterable[dict[str, Any]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for finding in findings:
        key = str(float(finding["severity"]))
        counts[key] = counts.get(key, 0) + 1
    return counts


def _updated_seconds(finding: dict[str, Any]) -> float:
    value = epoch_ms(finding.get("updatedAt", ""))
    return value / 1000 if isinstance(value, int) else 0.0


def _cluster(finding: dict[str, Any]) -> str:
    return ((finding.get("resource") or {}).get("eksClusterDetails") or {}).get("name", "")


def _day(finding: dict[str, Any]) -> float:
    moment = datetime.fromtimestamp(_updated_seconds(finding), UTC)
    return datetime(moment.year, moment.month, moment.day, tzinfo=UTC).timestamp()


_KEYS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "ACCOUNT": lambda f: f.get("accountId", ""),
    "DATE": _day,
    "FINDING_TYPE": lambda f: f["type"],
    "RESOURCE": _cluster,
    "SEVERITY": lambda f: float(f["severity"]),
}


def group(findings: Iterable[dict[str, Any]], group_by: str, descending: bool) -> list[dict[str, Any]]:
    """One entry per group, ordered by ``totalFindings`` (then by key, for a stable order)."""
    return ordered(group_by, groups_of(findings, group_by), descending)


def groups_of(findings: Iterable[dict[str, Any]], group_by: str) -> dict[Any, dict[str, Any]]:
    """Group key -> totals, aggregated one finding at a time (memory grows with groups, not findings)."""
    groups: dict[Any, dict[str, Any]] = {}
    for finding in findings:
        key = _KEYS[group_by](finding)
        entry = groups.setdefault(key, {"totalFindings": 0, "lastGeneratedAt": 0.0, "severity": 0.0})
        entry["totalFindings"] += 1
        entry["lastGeneratedAt"] = max(entry["lastGeneratedAt"], _updated_seconds(finding))
        entry["severity"] = max(entry["severity"], float(finding["severity"]))
        entry.setdefault("accountId", finding.get("accountId", ""))
    return groups


def ordered(group_by: str, groups: dict[Any, dict[str, Any]], descending: bool) -> list[dict[str, Any]]:
    """The response rows for aggregated ``groups`` (key -> totals), in the API's order."""
    rows = [_shape(group_by, key, entry) for key, entry in groups.items()]
    rows.sort(key=lambda row: str(row.get("_key")))
    rows.sort(key=lambda row: row["totalFindings"], reverse=descending)
    for row in rows:
        row.pop("_key")
    return rows


def _shape(group_by: str, key: Any, entry: dict[str, Any]) -> dict[str, Any]:
    common = {"_key": key, "lastGeneratedAt": entry["lastGeneratedAt"], "totalFindings": entry["totalFindings"]}
    if group_by == "ACCOUNT":
        return {**common, "accountId": key}
    if group_by == "DATE":
        return {**common, "date": key, "severity": entry["severity"]}
    if group_by == "FINDING_TYPE":
        return {**common, "findingType": key}
    if group_by == "RESOURCE":
        return {**common, "accountId": entry["accountId"], "resourceId": key, "resourceType": "EKSCluster"}
    return {**common, "severity": key}

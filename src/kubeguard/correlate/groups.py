"""Finding groups: findings related by shared entities within 48 hours, as Detective groups them.

Looser than an attack sequence: any two findings of one cluster that share an actor, a workload or a
public address within :data:`GROUP_WINDOW_MS` belong to one group, whatever their tactics, so an analyst
sees everything that touched the same things together. A group of one finding is not a group.
Attack sequences are left out (their members are grouped); archived findings are left out.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from kubeguard.correlate import tactics
from kubeguard.correlate.sequences import is_archived, is_sequence, link, member_of

GROUP_WINDOW_MS = 48 * 3600 * 1000


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def group_id(cluster: str, earliest_member_id: str) -> str:
    return hashlib.sha256(f"{cluster}\x1fgroup\x1f{earliest_member_id}".encode()).hexdigest()[:32]


def finding_groups(findings: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Groups of related findings, most severe first; each names its findings and the entities they share."""
    by_cluster = defaultdict(list)
    for finding in findings:
        if not is_sequence(finding) and not is_archived(finding):
            member = member_of(finding)
            by_cluster[member.entities.cluster].append(member)
    groups = []
    for cluster, members in sorted(by_cluster.items()):
        for chain in link(members, GROUP_WINDOW_MS):
            if len(chain) < 2:
                continue
            actors = sorted({m.entities.username for m in chain})
            addresses = sorted({ip for m in chain for ip in m.entities.addresses})
            workloads = sorted({f"{ns}/{kind}/{name}" for m in chain for ns, kind, name in m.entities.workloads})
            sequences = sorted({m.finding["associatedAttackSequenceArn"] for m in chain
                                if m.finding.get("associatedAttackSequenceArn")})
            groups.append({
                "id": group_id(cluster, chain[0].id),
                "cluster": cluster,
                "severity": max(float(m.finding.get("severity", 0)) for m in chain),
                "firstSeen": _iso(min(m.first_ms for m in chain)),
                "lastSeen": _iso(max(m.last_ms for m in chain)),
                "findingIds": [m.id for m in chain],
                "findingTypes": sorted({m.type for m in chain}),
                "tactics": sorted({t for m in chain if (t := tactics.tactic_name(m.type))}),
                "actors": actors,
                "sourceIPs": addresses,
                "workloads": workloads,
                "attackSequenceArns": sequences,
            })
    return sorted(groups, key=lambda g: (-g["severity"], g["firstSeen"], g["id"]))

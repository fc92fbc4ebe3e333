"""Correlation as a pipeline stage over findings held in memory (``kubeguard scan``).

The service runs the same :func:`kubeguard.correlate.sequences.correlate` after each batch is stored
(:mod:`kubeguard.correlate.stored`); here the findings are a list and the result is a new list.
"""

from __future__ import annotations

from typing import Any


def with_sequences(findings: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``findings`` with attack sequences first, and each member carrying ``associatedAttackSequenceArn``.

    Sequences already in ``findings`` are updated in place of being duplicated. The correlator is imported
    here, not at the top: a scan that found nothing (the start-up benchmark's) never needs it.
    """
    if not findings:
        return []
    from kubeguard.correlate.sequences import correlate, is_sequence

    correlation = correlate(findings)
    updated = []
    for finding in findings:
        if is_sequence(finding):
            continue
        arn = correlation.memberships.get(finding["id"])
        if arn is not None and finding.get("associatedAttackSequenceArn") != arn:
            finding = {**finding, "associatedAttackSequenceArn": arn}
        updated.append(finding)
    kept = {s["id"] for s in correlation.sequences}
    others = [f for f in findings if is_sequence(f) and f["id"] not in kept]
    return [*correlation.sequences, *others, *updated]


def table_order(findings: list[dict[str, Any]]) -> list[tuple[dict[str, Any], int]]:
    """(finding, depth) in the order a table shows them: each sequence (depth 0) followed by its members
    (depth 1) in the order they happened, then every other finding, most severe first."""
    from kubeguard.correlate.sequences import is_sequence

    sequences = [f for f in findings if is_sequence(f)]
    members: dict[str, list[dict[str, Any]]] = {s["arn"]: [] for s in sequences}
    others = []
    for finding in findings:
        if is_sequence(finding):
            continue
        members.get(finding.get("associatedAttackSequenceArn") or "", others).append(finding)
    ordered: list[tuple[dict[str, Any], int]] = []
    for sequence in sequences:
        ordered.append((sequence, 0))
        chain = sorted(members[sequence["arn"]], key=lambda f: f["service"]["eventFirstSeen"])
        ordered.extend((member, 1) for member in chain)
    ordered.extend((finding, 0) for finding in sorted(others, key=lambda f: -f["severity"]))
    return ordered

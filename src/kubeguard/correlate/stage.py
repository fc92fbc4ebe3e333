"""Correlation as a pipeline stage over findings held in memory (``kubeguard scan``).

The service runs the same :func:`kubeguard.correlate.sequences.correlate` after each batch is stored
(:mod:`kubeguard.correlate.stored`); here the findings are a list and the result is a new list.
"""

from __future__ import annotations

from typing import Any

from kubeguard.correlate.sequences import correlate, is_sequence


def with_sequences(findings: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``findings`` with attack sequences first, and each member carrying ``associatedAttackSequenceArn``.

    Sequences already in ``findings`` are updated in place of being duplicated.
    """
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

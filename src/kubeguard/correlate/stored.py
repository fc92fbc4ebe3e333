"""Correlation after a batch's findings are stored (``kubeguard serve`` and workers).

Runs inside the batch's transaction: it reads the non-archived findings of each cluster the batch
touched, over the 24 h correlation window around them (widened while linked findings reach further
back, up to :data:`MAX_LOOKBACK_MS`), plus that cluster's open attack sequences, calls the same
:func:`kubeguard.correlate.sequences.correlate` as ``scan``, and writes back the sequences (updated by id,
never duplicated) and ``associatedAttackSequenceArn`` on their members. A replayed batch finds the same
findings and so writes the same sequences.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection

from kubeguard.correlate.entities import cluster_of
from kubeguard.correlate.sequences import SEQUENCE_TYPE, WINDOW_MS, correlate, is_sequence
from kubeguard.findings.criteria import epoch_ms, matches
from kubeguard.store import findings as store
from kubeguard.store.dialect import insert_if_absent
from kubeguard.store.schema import findings as findings_table

MAX_LOOKBACK_MS = 7 * WINDOW_MS


def _ms(text: Any) -> int:
    value = epoch_ms(text) if isinstance(text, str) else None
    return value if isinstance(value, int) else 0


def _load(conn: Connection, detector_id: str, cluster: str, since_ms: int) -> list[dict[str, Any]]:
    criterion: dict[str, dict[str, Any]] = {
        "resource.eksClusterDetails.name": {"eq": [cluster]},
        "service.archived": {"eq": ["false"]},
        "service.eventLastSeen": {"gte": since_ms},
    }
    found = [f for f in store.scan(conn, detector_id, criterion) if matches(criterion, f) and not is_sequence(f)]
    open_sequences: dict[str, dict[str, Any]] = {"type": {"eq": [SEQUENCE_TYPE]}, **{
        k: v for k, v in criterion.items() if k != "service.eventLastSeen"}}
    found.extend(f for f in store.scan(conn, detector_id, open_sequences) if matches(open_sequences, f))
    return found


def window_findings(conn: Connection, detector_id: str, cluster: str, earliest_ms: int) -> list[dict[str, Any]]:
    """The findings correlation needs for new findings that began at ``earliest_ms``."""
    since = earliest_ms - WINDOW_MS
    floor = earliest_ms - MAX_LOOKBACK_MS
    while True:
        loaded = _load(conn, detector_id, cluster, since)
        reach = min((_ms((f.get("service") or {}).get("eventFirstSeen")) for f in loaded if not is_sequence(f)),
                    default=since + WINDOW_MS)
        wider = max(reach - WINDOW_MS, floor)
        if wider >= since:
            return loaded
        since = wider


def correlate_stored(conn: Connection, stored: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Correlate the clusters ``stored`` findings belong to; returns the sequences created or changed."""
    earliest: dict[tuple[str, str], int] = {}
    for finding in stored:
        if is_sequence(finding):
            continue
        key = ((finding.get("service") or {}).get("detectorId", ""), cluster_of(finding))
        first = _ms((finding.get("service") or {}).get("eventFirstSeen"))
        earliest[key] = min(earliest.get(key, first), first)
    changed: list[dict[str, Any]] = []
    for (detector_id, cluster), first in sorted(earliest.items()):
        known = window_findings(conn, detector_id, cluster, first)
        by_id = {f["id"]: f for f in known}
        correlation = correlate(known)
        for sequence in correlation.sequences:
            previous = by_id.get(sequence["id"])
            if previous is None:
                insert_if_absent(conn, findings_table, store.row_values(sequence))
                changed.append(sequence)
            elif _content(previous) != _content(sequence):
                store.save(conn, sequence)
                changed.append(sequence)
        for finding_id, arn in correlation.memberships.items():
            member = by_id.get(finding_id)
            if member is not None and member.get("associatedAttackSequenceArn") != arn:
                store.save(conn, {**member, "associatedAttackSequenceArn": arn})
    return changed


def _content(sequence: dict[str, Any]) -> Any:
    """What makes a sequence different for a reader (timestamps of the update itself excluded)."""
    return (sequence.get("service") or {}).get("detection"), (sequence.get("service") or {}).get("eventLastSeen")

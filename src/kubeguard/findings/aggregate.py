"""Finding identity and aggregation.

A finding's identity is a fingerprint of (cluster, type, principal, the type's own key). The finding
``id`` is derived from that fingerprint, so a replay of the same log, or two workers that see the same
activity, converge on the same finding instead of making new ones. A later occurrence updates the
existing finding: count, eventFirstSeen/eventLastSeen and updatedAt move; everything else stays as it
was first reported (the first occurrence is the one the analyst triages).
"""

from __future__ import annotations

import hashlib
from typing import Any

_SEPARATOR = "\x1f"


def fingerprint(cluster: str, finding_type: str, principal: str, key: str) -> str:
    """The aggregation identity of a finding, as 64 hex characters."""
    material = _SEPARATOR.join((cluster, finding_type, principal, key)).encode()
    return hashlib.sha256(material).hexdigest()


def finding_id(fingerprint_hex: str) -> str:
    """GuardDuty finding ids are 32 lowercase hex characters."""
    return fingerprint_hex[:32]


def merge_finding(existing: dict[str, Any], incoming: dict[str, Any]) -> dict[str, Any]:
    """Fold ``incoming`` (a new occurrence with the same id) into ``existing``; returns a new dict.

    Timestamps are ISO-8601 strings in one format, so they order correctly as strings.
    """
    merged = dict(existing)
    old_service = existing["service"]
    new_service = incoming["service"]
    service = dict(old_service)
    service["count"] = int(old_service.get("count", 1)) + int(new_service.get("count", 1))
    service["eventFirstSeen"] = min(old_service["eventFirstSeen"], new_service["eventFirstSeen"])
    service["eventLastSeen"] = max(old_service["eventLastSeen"], new_service["eventLastSeen"])
    merged["service"] = service
    merged["updatedAt"] = max(existing["updatedAt"], incoming["updatedAt"])
    merged["severity"] = max(float(existing["severity"]), float(incoming["severity"]))
    return merged
